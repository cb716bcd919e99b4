#include "reports/graphviz_renderer.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <thread>

#include <graphviz/cgraph.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/error.hpp"
#include "reports/impact_picture.hpp"

namespace cmdb::reports {
namespace {

graph::DependencyGraph Star(int leaves, const std::string& centre_name) {
  std::vector<graph::GraphNode> nodes{{1, "database", centre_name, "active", 0},
                                      {2, "business_service", "Shop", "active", 0}};
  std::vector<graph::GraphEdge> edges{{1, 2, 1, "depends_on"}};
  for (int i = 0; i < leaves; ++i) {
    nodes.push_back({100 + i, "vm", "vm-" + std::to_string(i), i == 0 ? "retired" : "active", 0});
    edges.push_back({100 + i, 100 + i, 1, "depends_on"});
  }
  return graph::DependencyGraph::Build(nodes, edges,
                                       {{"depends_on", "", model::Propagation::kToFrom, true, {}}});
}

graph::ImpactResult Down(const graph::DependencyGraph& g, model::CiId root) {
  graph::ImpactQuery q;
  q.root = root;
  return g.Impact(q);
}

const std::string kHostile =
    "db \"01\" <b>bold</b> \\N \\G back\\slash\nnew line сервер 日本 &amp;";

TEST(ImpactPicture, FoldsLargeFanOutsIntoSummaryNodes) {
  auto g = Star(240, "db");
  ImpactPicture p = BuildImpactPicture(Down(g, 1), g, 1, {20, 300});
  std::size_t ci_nodes = 0;
  const PictureNode* summary = nullptr;
  for (const auto& n : p.nodes) {
    if (n.folded > 0) summary = &n;
    if (n.id != 0) ++ci_nodes;
  }
  ASSERT_NE(summary, nullptr);
  EXPECT_EQ(summary->name, "+230 vm");  // 10 leaves kept, the service kept, 230 folded
  EXPECT_EQ(ci_nodes, 12U);             // root + service + 10 leaves
}

TEST(ImpactPicture, CapsTheNodeCountWhateverTheShape) {
  auto g = Star(5000, "db");
  ImpactPicture p = BuildImpactPicture(Down(g, 1), g, 1, {10000, 50});
  EXPECT_LE(p.nodes.size(), 51U);
  EXPECT_EQ(p.nodes.back().name, "+" + std::to_string(5002 - 50) + " more CIs");
}

TEST(GraphvizRenderer, EscapesLabelsSoDotReadsBackTheSameText) {
  auto g = Star(3, kHostile);
  ImpactPicture p = BuildImpactPicture(Down(g, 1), g, 1);
  GraphvizRenderer renderer;
  std::string dot = renderer.Render(p, RenderFormat::kDot);
  std::unique_ptr<Agraph_t, int (*)(Agraph_t*)> parsed(agmemread(dot.c_str()), &agclose);
  ASSERT_NE(parsed, nullptr) << dot;
  Agnode_t* root = agnode(parsed.get(), const_cast<char*>("ci1"), 0);  // NOLINT
  ASSERT_NE(root, nullptr);
  std::string label = agget(root, const_cast<char*>("label"));  // NOLINT
  EXPECT_EQ(label, EscapeLabel(kHostile) + "\\ndatabase");
  EXPECT_EQ(EscapeLabel("a\\Nb\nc"), "a\\\\Nb c");
}

// Found by fuzz/fuzz_render: stray bytes were read by Graphviz as Latin-1 and the SVG was not
// well-formed XML. Well-formed UTF-8 is kept, anything else is U+FFFD.
TEST(GraphvizRenderer, LabelsAreWellFormedUtf8WhateverTheBytes) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(EscapeLabel("\xE2\x98\x83 \xC3\xA9 \xF0\x9F\x98\x80"),
            "\xE2\x98\x83 \xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(EscapeLabel("a\xC2\xC2\xAB"), "a" + fffd + "\xC2\xAB");  // a lead byte without its tail
  EXPECT_EQ(EscapeLabel("\xFF"), fffd);
  EXPECT_EQ(EscapeLabel("\xF9\xB2\xB2\xB2"), fffd + fffd + fffd + fffd);  // F8-FF lead nothing
  EXPECT_EQ(EscapeLabel("\xC0\x80"), fffd + fffd);                        // overlong NUL
  EXPECT_EQ(EscapeLabel("\xED\xA0\x80"), fffd + fffd + fffd);             // a surrogate
  EXPECT_EQ(EscapeLabel("\xEF\xBF\xBF"), fffd + fffd + fffd);  // U+FFFF, not allowed in XML
  EXPECT_EQ(EscapeLabel("\xE2\x98"), fffd + fffd);             // cut short
  // Found by the long fuzz run: a title that is only a byte order mark was written unquoted
  // into DOT that Graphviz could not read back. Dropped: it is invisible.
  EXPECT_EQ(EscapeLabel("\xEF\xBB\xBF"), "");
  EXPECT_EQ(EscapeLabel("\xEF\xBB\xBF"
                        "db-01"),
            "db-01");
  // And an edge labelled "-." (Graphviz took it for a number).
  for (const char* text : {"-", ".", "-."}) {
    EXPECT_EQ(EscapeLabel(text), std::string(text) + "\xE2\x80\x8B");
    auto star = Star(2, "db");
    ImpactPicture picture = BuildImpactPicture(Down(star, 1), star, 1);
    for (PictureEdge& edge : picture.edges) edge.label = text;
    picture.title = text;
    const std::string dot = GraphvizRenderer().Render(picture, RenderFormat::kDot);
    std::unique_ptr<Agraph_t, int (*)(Agraph_t*)> read(agmemread(dot.c_str()), &agclose);
    EXPECT_NE(read, nullptr) << dot;
  }
  EXPECT_EQ(EscapeLabel("-1.5"), "-1.5");
  {
    auto star = Star(2, "\xEF\xBB\xBF");
    ImpactPicture bom = BuildImpactPicture(Down(star, 1), star, 1);
    bom.title = "\xEF\xBB\xBF";
    const std::string dot = GraphvizRenderer().Render(bom, RenderFormat::kDot);
    std::unique_ptr<Agraph_t, int (*)(Agraph_t*)> read(agmemread(dot.c_str()), &agclose);
    EXPECT_NE(read, nullptr) << dot;
  }
  auto g = Star(3, "bad \xC2\xC2 bytes");
  ImpactPicture p = BuildImpactPicture(Down(g, 1), g, 1);
  const std::string svg = GraphvizRenderer().Render(p, RenderFormat::kSvg);
  EXPECT_NE(svg.find("bad " + fffd), std::string::npos);
}

TEST(GraphvizRenderer, SvgCarriesEscapedTextAndNoMarkupFromLabels) {
  auto g = Star(3, "<script>alert(1)</script>");
  ImpactPicture p = BuildImpactPicture(Down(g, 1), g, 1);
  GraphvizRenderer renderer;
  std::string svg = renderer.Render(p, RenderFormat::kSvg);
  EXPECT_EQ(svg.find("<script>"), std::string::npos);
  EXPECT_NE(svg.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  std::string png = renderer.Render(p, RenderFormat::kPng);
  ASSERT_GT(png.size(), 8U);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST(GraphvizRenderer, DotIsTheSameWhateverWasRenderedBefore) {
  // Graphviz keeps defaults a layout declares for the graphs opened after it: the DOT of one
  // picture must not depend on what the process drew earlier.
  auto g = Star(3, "db-01");
  ImpactPicture p = BuildImpactPicture(Down(g, 1), g, 1);
  GraphvizRenderer renderer;
  const std::string first = renderer.Render(p, RenderFormat::kDot);
  renderer.Render(p, RenderFormat::kSvg);
  renderer.Render(p, RenderFormat::kPng);
  EXPECT_EQ(renderer.Render(p, RenderFormat::kDot), first);
}

TEST(GraphvizRenderer, ABusyRendererAnswersUnavailableInsteadOfQueueingForever) {
  auto g = Star(600, "db");
  ImpactPicture big = BuildImpactPicture(Down(g, 1), g, 1, {10000, 600});
  GraphvizRenderer renderer;
  std::thread slow([&] { renderer.Render(big, RenderFormat::kSvg); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto small = BuildImpactPicture(Down(g, 1), g, 1, {5, 5});
  try {
    renderer.Render(small, RenderFormat::kSvg, std::chrono::milliseconds(1));
    // The big render may already have finished on a fast machine; then this one succeeded.
  } catch (const model::Error& e) {
    EXPECT_EQ(e.code(), model::ErrorCode::kUnavailable);
  }
  slow.join();
}

}  // namespace
// Chinese names in impact PNGs. Fontconfig reads its configuration once per process, so both
// renders happen in processes of their own (this binary again, running the helper below): one
// with the machine's fonts, one where every font covering Chinese is rejected — the "font known
// to lack the glyphs", which draws missing-glyph boxes. If the machine had no CJK font, the
// two Chinese renders would be the same boxes; the Latin renders, the same in both, show that
// the CJK fonts are the only difference.
void WriteFile(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  std::fclose(f);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string RenderLabel(const std::string& label) {
  auto g = Star(0, label);
  ImpactPicture p = BuildImpactPicture(Down(g, 1), g, 1);
  p.title.clear();
  for (PictureNode& n : p.nodes) n.name = label;
  return GraphvizRenderer().Render(p, RenderFormat::kPng);
}

TEST(ImpactPngFonts, DISABLED_RenderLabelsForTheParent) {
  const char* out = std::getenv("CMDB_RENDER_OUT");
  ASSERT_NE(out, nullptr) << "run by ImpactPngFonts.ChineseLabelsAreDrawnWithRealGlyphs";
  WriteFile(std::string(out) + ".cjk.png", RenderLabel("财务系统"));
  WriteFile(std::string(out) + ".latin.png", RenderLabel("Finance"));
}

void RenderInChild(const std::string& out, const std::string& fontconfig_file) {
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("CMDB_RENDER_OUT", out.c_str(), 1);
    if (!fontconfig_file.empty()) setenv("FONTCONFIG_FILE", fontconfig_file.c_str(), 1);
    execl("/proc/self/exe", "cmdb_unit_tests",
          "--gtest_filter=ImpactPngFonts.DISABLED_RenderLabelsForTheParent",
          "--gtest_also_run_disabled_tests", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the render helper failed";
}

TEST(ImpactPngFonts, ChineseLabelsAreDrawnWithRealGlyphs) {
  char dir_template[] = "/tmp/cmdb-fonts-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  WriteFile(dir + "/no-cjk.conf",
            "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\n<fontconfig>\n"
            "  <include ignore_missing=\"yes\">/etc/fonts/fonts.conf</include>\n"
            "  <selectfont><rejectfont>\n"
            "    <pattern><patelt name=\"lang\"><string>zh-cn</string></patelt></pattern>\n"
            "    <pattern><patelt name=\"lang\"><string>zh-tw</string></patelt></pattern>\n"
            "    <pattern><patelt name=\"lang\"><string>ja</string></patelt></pattern>\n"
            "  </rejectfont></selectfont>\n</fontconfig>\n");
  RenderInChild(dir + "/machine", "");
  RenderInChild(dir + "/lacking", dir + "/no-cjk.conf");
  const std::string machine_latin = ReadFile(dir + "/machine.latin.png");
  const std::string machine_cjk = ReadFile(dir + "/machine.cjk.png");
  const std::string lacking_latin = ReadFile(dir + "/lacking.latin.png");
  const std::string lacking_cjk = ReadFile(dir + "/lacking.cjk.png");
  ASSERT_GT(machine_cjk.size(), 8U);
  EXPECT_EQ(machine_latin, lacking_latin) << "rejecting CJK fonts changed Latin text too";
  EXPECT_NE(machine_cjk, lacking_cjk)
      << "财务系统 renders the same as in a font without Chinese glyphs: missing-glyph boxes. "
         "Install a CJK font (scripts/setup.sh: fonts-wqy-microhei).";
  std::filesystem::remove_all(dir);
}

}  // namespace cmdb::reports
