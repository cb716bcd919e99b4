#include "reports/graphviz_renderer.hpp"

#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include "model/error.hpp"

namespace cmdb::reports {
namespace {

// cgraph takes char* for names and values it does not modify.
char* Chars(const std::string& s) { return const_cast<char*>(s.c_str()); }  // NOLINT

void Set(void* object, const char* name, const std::string& value) {
  agsafeset(object, const_cast<char*>(name), Chars(value), const_cast<char*>(""));  // NOLINT
}

struct GraphCloser {
  void operator()(Agraph_t* g) const { agclose(g); }
};

// Graphviz keeps process-wide state (and its pango plugin caches pointers into the context's
// font dictionary), so there is one context and one lock for the whole process, and the
// context is never freed: freeing it and making another leaves that cache dangling.
struct Process {
  std::timed_mutex mutex;
  GVC_t* gvc = nullptr;  // guarded by mutex
};

Process& Graphviz() {
  static auto* process = new Process;  // NOLINT(cppcoreguidelines-owning-memory): never freed
  return *process;
}

}  // namespace

std::string EscapeLabel(std::string_view text) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u < 0x80) {
      if (u == '\\') {
        out += "\\\\";
      } else if (u < 0x20 || u == 0x7F) {
        out += ' ';
      } else {
        out += static_cast<char>(u);
      }
      ++i;
      continue;
    }
    // A UTF-8 sequence is copied when it is well-formed (shortest form, no surrogates, at most
    // U+10FFFF) and a character XML allows; anything else becomes U+FFFD. Graphviz would read
    // stray bytes as Latin-1 and write SVG that is not well-formed XML.
    const std::size_t length = u >= 0xF8 ? 0 : u >= 0xF0 ? 4 : u >= 0xE0 ? 3 : u >= 0xC0 ? 2 : 0;
    char32_t code = length == 4 ? u & 0x07U : length == 3 ? u & 0x0FU : u & 0x1FU;
    bool valid = length > 0 && i + length <= text.size();
    for (std::size_t k = 1; valid && k < length; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      valid = (c & 0xC0U) == 0x80U;
      code = (code << 6U) | (c & 0x3FU);
    }
    valid = valid &&
            code >= (length == 2   ? 0x80U
                     : length == 3 ? 0x800U
                                   : 0x10000U) &&
            code <= 0x10FFFFU && (code < 0xD800U || code > 0xDFFFU) && code != 0xFFFEU &&
            code != 0xFFFFU;
    if (valid && code == 0xFEFFU) {
      // A byte order mark (zero-width no-break space), invisible anyway: Graphviz writes it
      // unquoted into DOT and then cannot read that DOT back.
      i += length;
    } else if (valid) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  // Graphviz writes "-", "." and "-." unquoted into DOT, taking them for numbers, and then
  // cannot read them back; a zero-width space after them makes it quote them, unseen.
  if (out == "-" || out == "." || out == "-.") out += "\xE2\x80\x8B";
  return out;
}

std::string GraphvizRenderer::Render(const ImpactPicture& picture, RenderFormat format,
                                     std::chrono::milliseconds wait) {
  Process& graphviz = Graphviz();
  std::unique_lock lock(graphviz.mutex, std::defer_lock);
  if (!lock.try_lock_for(wait)) {
    throw model::Error(model::ErrorCode::kUnavailable,
                       "the graph renderer is busy with other requests; retry shortly");
  }
  std::unique_ptr<Agraph_t, GraphCloser> g(
      agopen(const_cast<char*>("impact"), Agdirected, nullptr));  // NOLINT
  // Graphviz's own default node label, declared on every graph: a layout declares it for the
  // graphs opened after it, and the DOT of a picture would otherwise depend on what the
  // process drew before (`node [label="\N"];` or not).
  agattr(g.get(), AGNODE, const_cast<char*>("label"), const_cast<char*>("\\N"));  // NOLINT
  Set(g.get(), "rankdir", "RL");
  Set(g.get(), "label", EscapeLabel(picture.title));
  Set(g.get(), "labelloc", "t");
  Set(g.get(), "fontname", "Helvetica");
  Set(g.get(), "bgcolor", "white");
  for (const PictureNode& n : picture.nodes) {
    Agnode_t* node = agnode(g.get(), Chars(n.key), 1);
    std::string label = EscapeLabel(n.name);
    if (!n.type.empty() && n.folded == 0) label += "\\n" + EscapeLabel(n.type);
    Set(node, "label", label);
    Set(node, "fontname", "Helvetica");
    Set(node, "shape", n.service ? "doubleoctagon" : n.folded > 0 ? "note" : "box");
    if (!picture.node_link.empty() && n.id > 0) {
      std::string url = picture.node_link;
      const std::size_t at = url.find("{id}");
      if (at != std::string::npos) url.replace(at, 4, std::to_string(n.id));
      Set(node, "URL", url);
      Set(node, "target", "_top");
      Set(node, "tooltip", EscapeLabel(n.name));
    }
    std::string style = "filled";
    std::string fill = "#e8eef7";
    std::string color = "#4a6fa5";
    if (n.root) {
      fill = "#d9534f";
      color = "#8b1a17";
      Set(node, "penwidth", "3");
      Set(node, "fontcolor", "white");
    } else if (n.service) {
      fill = "#f0ad4e";
      color = "#a86400";
      Set(node, "penwidth", "2");
    } else if (n.absorbed) {
      fill = "#dff0d8";
      color = "#3c763d";
      style += ",dashed";
    } else if (n.folded > 0) {
      fill = "#f5f5f5";
      color = "#999999";
    }
    if (n.status == "retired") {
      fill = "#eeeeee";
      color = "#999999";
      style += ",dotted";
      Set(node, "fontcolor", "#777777");
    }
    if (n.drifted) color = "#9b59b6";               // hook for discovery (#4)
    if (n.incident) Set(node, "peripheries", "2");  // hook for incidents (#5)
    Set(node, "style", style);
    Set(node, "fillcolor", fill);
    Set(node, "color", color);
  }
  for (const PictureEdge& e : picture.edges) {
    Agnode_t* from = agnode(g.get(), Chars(e.from), 0);
    Agnode_t* to = agnode(g.get(), Chars(e.to), 0);
    if (from == nullptr || to == nullptr) continue;
    Agedge_t* edge = agedge(g.get(), from, to, nullptr, 1);
    Set(edge, "label", EscapeLabel(e.label));
    Set(edge, "fontname", "Helvetica");
    Set(edge, "fontsize", "10");
    Set(edge, "color", "#666666");
  }
  if (graphviz.gvc == nullptr) graphviz.gvc = gvContext();
  GVC_t* gvc = graphviz.gvc;
  if (gvLayout(gvc, g.get(), "dot") != 0) {
    throw model::Error(model::ErrorCode::kInternal, "Graphviz could not lay out the graph");
  }
  const char* renderer = format == RenderFormat::kSvg   ? "svg"
                         : format == RenderFormat::kPng ? "png"
                                                        : "dot";
  char* data = nullptr;
  unsigned int length = 0;
  int rc = gvRenderData(gvc, g.get(), renderer, &data, &length);
  std::string out = rc == 0 && data != nullptr ? std::string(data, length) : std::string();
  if (data != nullptr) gvFreeRenderData(data);
  gvFreeLayout(gvc, g.get());
  if (rc != 0) {
    throw model::Error(model::ErrorCode::kInternal,
                       std::string("Graphviz could not render ") + renderer);
  }
  return out;
}

}  // namespace cmdb::reports
