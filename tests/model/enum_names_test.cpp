// Every state and kind has one spelling, and it reads back as itself. (That the database's
// CHECK constraints allow exactly these names is Migrations.StateAndKindNamesAreThose...)

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "model/change.hpp"
#include "model/discovery_source.hpp"
#include "model/drift_finding.hpp"
#include "model/incident.hpp"
#include "model/job_state.hpp"
#include "model/knowledge.hpp"

namespace cmdb::model {
namespace {

// The enum's values are 0..N-1 (declared without explicit values): each has a row, the names
// are distinct and non-empty, and name -> value -> name is the identity.
template <typename Enum, typename Table, typename NameFn, typename FromFn>
void ExpectOneSpellingEach(const Table& table, NameFn name_of, FromFn from_name) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto value = static_cast<Enum>(i);
    const std::string name(name_of(value));
    EXPECT_FALSE(name.empty()) << "value " << i << " has no name";
    EXPECT_TRUE(names.insert(name).second) << name << " names two values";
    EXPECT_EQ(from_name(name), value) << name;
  }
  EXPECT_EQ(from_name("no_such_state"), std::nullopt);
  EXPECT_EQ(from_name(""), std::nullopt);
}

TEST(EnumNames, EveryValueHasOneSpellingThatReadsBack) {
  ExpectOneSpellingEach<ChangeState>(kChangeStateNames, ChangeStateName, ChangeStateFromName);
  ExpectOneSpellingEach<IncidentState>(kIncidentStateNames, IncidentStateName,
                                       IncidentStateFromName);
  ExpectOneSpellingEach<FindingState>(kFindingStateNames, FindingStateName, FindingStateFromName);
  ExpectOneSpellingEach<JobState>(kJobStateNames, JobStateName, JobStateFromName);
  ExpectOneSpellingEach<ArticleState>(kArticleStateNames, ArticleStateName, ArticleStateFromName);
  ExpectOneSpellingEach<SourceKind>(kSourceKinds, SourceKindName, SourceKindFromName);
}

TEST(EnumNames, TheWireSpellingsAreStable) {
  EXPECT_EQ(ChangeStateName(ChangeState::kInProgress), "in_progress");
  EXPECT_EQ(IncidentStateName(IncidentState::kInProgress), "in_progress");
  EXPECT_EQ(FindingStateName(FindingState::kAccepted), "accepted");
  EXPECT_EQ(JobStateName(JobState::kSucceeded), "succeeded");
  EXPECT_EQ(SourceKindName(SourceKind::kNmapXml), "nmap_xml");
  EXPECT_EQ(SourceKindName(SourceKind::kAnsibleFacts), "ansible_facts");
}

}  // namespace
}  // namespace cmdb::model
