// The impact picture's labels (CI names, types, relation labels, the title: user text) through
// the DOT and SVG renderers: the DOT that Graphviz writes reads back (cgraph) with exactly the
// labels we set, and the SVG is well-formed XML (expat), whatever quotes, angle brackets,
// backslashes, control characters or odd Unicode the names hold. The input is four texts
// separated by NUL bytes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <expat.h>
#include <graphviz/cgraph.h>

#include "fuzz/fuzz_check.hpp"
#include "model/error.hpp"
#include "reports/graphviz_renderer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (parts.size() < 3) {
    const std::size_t end = text.find('\0', start);
    if (end == std::string_view::npos) break;
    parts.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  parts.emplace_back(text.substr(std::min(start, text.size())));
  parts.resize(4);
  cmdb::reports::ImpactPicture picture;
  picture.title = parts[3];
  cmdb::reports::PictureNode root;
  root.key = "ci1";
  root.id = 1;
  root.name = parts[0];
  root.type = parts[1];
  root.root = true;
  cmdb::reports::PictureNode other;
  other.key = "ci2";
  other.id = 2;
  other.name = parts[1];
  other.type = "server";
  picture.nodes = {root, other};
  picture.edges = {{"ci2", "ci1", parts[2]}};
  static cmdb::reports::GraphvizRenderer renderer;
  std::string dot;
  try {
    dot = renderer.Render(picture, cmdb::reports::RenderFormat::kDot);
  } catch (const cmdb::model::Error&) {
    return 0;  // Graphviz refused to lay it out: an answer, not a crash
  }
  std::unique_ptr<Agraph_t, int (*)(Agraph_t*)> read(agmemread(dot.c_str()), agclose);
  CMDB_FUZZ_CHECK(read != nullptr);
  CMDB_FUZZ_CHECK(agnnodes(read.get()) == 2);
  Agnode_t* node = agnode(read.get(), const_cast<char*>("ci1"), 0);  // NOLINT
  CMDB_FUZZ_CHECK(node != nullptr);
  const char* label = agget(node, const_cast<char*>("label"));  // NOLINT
  CMDB_FUZZ_CHECK(label != nullptr);
  std::string expected = cmdb::reports::EscapeLabel(parts[0]);
  if (!parts[1].empty()) expected += "\\n" + cmdb::reports::EscapeLabel(parts[1]);
  CMDB_FUZZ_CHECK(std::string(label) == expected);
  std::string svg;
  try {
    svg = renderer.Render(picture, cmdb::reports::RenderFormat::kSvg);
  } catch (const cmdb::model::Error&) {
    return 0;
  }
  std::unique_ptr<XML_ParserStruct, void (*)(XML_Parser)> parser(XML_ParserCreate("UTF-8"),
                                                                 XML_ParserFree);
  CMDB_FUZZ_CHECK(XML_Parse(parser.get(), svg.data(), static_cast<int>(svg.size()), 1) ==
                  XML_STATUS_OK);
  return 0;
}
