#include "reports/report_document.hpp"

#include <gtest/gtest.h>

namespace cmdb::reports {
namespace {

TEST(CsvWriter, QuotesPerRfc4180) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField("财务系统"), "财务系统");
  std::string row;
  AppendCsvRow(row, {"1", "a,b", ""});
  EXPECT_EQ(row, "1,\"a,b\",\r\n");
}

TEST(CsvWriter, NeutralisesWhatASpreadsheetWouldRunAsAFormula) {
  EXPECT_EQ(CsvField("=1+2"), "'=1+2");
  EXPECT_EQ(CsvField("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
  EXPECT_EQ(CsvField("-2+3"), "'-2+3");
  EXPECT_EQ(CsvField("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(CsvField("\t=1"), "'\t=1");
  EXPECT_EQ(CsvField("\r=1"), "\"'\r=1\"");
  EXPECT_EQ(CsvField("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
  // Numbers stay numbers.
  EXPECT_EQ(CsvField("-3"), "-3");
  EXPECT_EQ(CsvField("-1.5"), "-1.5");
  EXPECT_EQ(CsvField("+7"), "+7");
  EXPECT_EQ(CsvField("a=b"), "a=b");
}

TEST(CsvWriter, DocumentAsOneLongTable) {
  Document doc;
  Section s;
  s.title = "Tiers";
  Table t;
  t.headers = {"Tier", "Opened", "Rate"};
  t.rows.push_back({Text("Tier 1"), Number(5), Percent(4, 5)});
  s.tables.push_back(t);
  doc.sections.push_back(s);
  EXPECT_EQ(DocumentCsv(doc, true),
            "\xEF\xBB\xBFsection,table,row,column,value\r\nTiers,,Tier 1,Opened,5\r\nTiers,,Tier "
            "1,Rate,80.0 %\r\n");
  EXPECT_EQ(Percent(1, 0).text, "–");
  EXPECT_EQ(Decimal(2.345, 2).text, "2.35");
  EXPECT_EQ(Decimal(0, 2, false).text, "–");
}

TEST(ICalendar, EscapesFoldsAtSeventyFiveOctetsAndNeverSplitsACharacter) {
  CalendarEvent e;
  e.uid = "change-1@cmdb";
  e.start = *model::ParseTimestamp("2026-12-01T09:00:00Z");
  e.end = *model::ParseTimestamp("2026-12-01T11:30:00.5Z");
  e.summary = "升级财务系统数据库, 切换主备; 回退方案\\备份 " + std::string(60, 'x') +
              "财务系统财务系统财务系统";
  e.description = "line one\nline two";
  e.status = "CONFIRMED";
  e.categories = {"high", "collision"};
  const std::string ics =
      ICalendar("cmdb changes", {e}, *model::ParseTimestamp("2026-12-06T00:00:00Z"));
  EXPECT_EQ(ics.rfind("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", 0), 0U);
  EXPECT_NE(ics.find("DTSTART:20261201T090000Z\r\n"), std::string::npos);
  EXPECT_NE(ics.find("DTEND:20261201T113000Z\r\n"), std::string::npos);
  EXPECT_NE(ics.find("DESCRIPTION:line one\\nline two\r\n"), std::string::npos);
  EXPECT_NE(ics.find("CATEGORIES:high,collision\r\n"), std::string::npos);
  EXPECT_EQ(ics.substr(ics.size() - 15), "END:VCALENDAR\r\n");
  // Every physical line at most 75 octets, continuation lines start with a space, and no line
  // ends inside a UTF-8 sequence.
  std::string unfolded;
  std::size_t pos = 0;
  while (pos < ics.size()) {
    const std::size_t end = ics.find("\r\n", pos);
    ASSERT_NE(end, std::string::npos);
    const std::string line = ics.substr(pos, end - pos);
    EXPECT_LE(line.size(), 75U) << line;
    ASSERT_FALSE(line.empty());
    const unsigned char last = static_cast<unsigned char>(line.back());
    EXPECT_FALSE(last >= 0xC0U) << "a line ends with a lead byte";
    if (line[0] == ' ') {
      unfolded += line.substr(1);
    } else {
      unfolded += (unfolded.empty() ? "" : "\n") + line;
    }
    pos = end + 2;
  }
  EXPECT_NE(unfolded.find("SUMMARY:升级财务系统数据库\\, 切换主备\\; 回退方案\\\\备份 "),
            std::string::npos)
      << unfolded;
  EXPECT_NE(unfolded.find(std::string(60, 'x') + "财务系统财务系统财务系统"), std::string::npos);
}

TEST(ICalendar, TextThatIsNotUtf8IsStillFolded) {
  CalendarEvent e;
  e.summary = std::string(300, '\x80');  // continuation bytes only: no character boundary
  const std::string ics = ICalendar("x", {e}, model::Timestamp{0});
  for (std::size_t p = 0, end; (end = ics.find("\r\n", p)) != std::string::npos; p = end + 2) {
    EXPECT_LE(end - p, 75U);
  }
  EXPECT_NE(ics.find("END:VCALENDAR"), std::string::npos);
}

TEST(Lang, FromAcceptLanguage) {
  EXPECT_EQ(LangFromAcceptLanguage(""), Lang::kEn);
  EXPECT_EQ(LangFromAcceptLanguage("zh-CN,zh;q=0.9,en;q=0.8"), Lang::kZh);
  EXPECT_EQ(LangFromAcceptLanguage("en-US,en;q=0.9,zh;q=0.8"), Lang::kEn);
  EXPECT_EQ(LangFromAcceptLanguage("fr-FR, zh-TW;q=0.5"), Lang::kZh);
  EXPECT_EQ(LangFromAcceptLanguage("de"), Lang::kEn);
  EXPECT_EQ(LangFromAcceptLanguage("en;q=0.2, ZH;q=0.7"), Lang::kZh);
}

TEST(Html, EscapesEveryValueAndDrawsChartsInline) {
  Document doc;
  doc.lang = Lang::kZh;
  doc.title = "<script>alert(1)</script> 财务";
  doc.facts = {{"a\"b", "c'd & e"}};
  Section s;
  s.title = "<b>section</b>";
  Chart chart;
  chart.title = "\"><svg onload=alert(1)>";
  chart.points = {{"<i>x</i>", 3, "3"}, {"y", 1, "1"}};
  s.charts.push_back(chart);
  Chart line;
  line.kind = Chart::Kind::kLine;
  line.points = {{"a", 50, "50 %"}, {"b", 75, "75 %"}};
  s.charts.push_back(line);
  Table t;
  t.headers = {"<th>"};
  t.rows.push_back({Text("<img src=x onerror=alert(1)>", true)});
  s.tables.push_back(t);
  Table empty;
  empty.empty_text = "nothing <here>";
  s.tables.push_back(empty);
  doc.sections.push_back(s);
  const std::string html = RenderHtml(doc);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<svg onload"), std::string::npos);
  EXPECT_EQ(html.find("<i>x"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt; 财务"), std::string::npos);
  EXPECT_NE(html.find("c&apos;d &amp; e"), std::string::npos);
  EXPECT_NE(html.find("<html lang=\"zh\">"), std::string::npos);
  EXPECT_NE(html.find("<rect"), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
  EXPECT_NE(html.find("class=\" alert\">&lt;img"), std::string::npos);
  EXPECT_NE(html.find("nothing &lt;here&gt;"), std::string::npos);
  EXPECT_NE(html.find("<style>"), std::string::npos);
}

}  // namespace
}  // namespace cmdb::reports
