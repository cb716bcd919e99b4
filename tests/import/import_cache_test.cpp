#include "import/import_cache.hpp"

#include <future>
#include <thread>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace cmdb::import {
namespace {

model::ConfigurationItem Ci(const std::string& attributes) {
  model::ConfigurationItem ci;
  ci.id = 7;
  ci.type = "server";
  ci.name = "db-01";
  ci.owner = "dba";
  ci.tags = {"prod", "eu"};
  ci.attributes = boost::json::parse(attributes).as_object();
  return ci;
}

// A row whose digest is its CI's is taken as unchanged without being read: every difference in
// a writable field must change the digest, and only the order of attribute keys may not.
TEST(CiDigest, EqualFieldsOnlyGiveEqualDigests) {
  const model::ConfigurationItem base =
      Ci(R"({"serial": "S1", "memory_mb": 1024, "disk": {"a": 1, "b": [1, "x"]}})");
  EXPECT_EQ(
      DigestOf(base),
      DigestOf(Ci(R"({"disk": {"b": [1, "x"], "a": 1}, "memory_mb": 1024, "serial": "S1"})")));

  std::vector<std::pair<std::string, model::ConfigurationItem>> changed;
  auto with = [&](const std::string& what, auto change) {
    model::ConfigurationItem ci = base;
    change(ci);
    changed.emplace_back(what, ci);
  };
  with("name", [](auto& ci) { ci.name = "db-02"; });
  with("status", [](auto& ci) { ci.status = "retired"; });
  with("no owner", [](auto& ci) { ci.owner.reset(); });
  with("empty owner", [](auto& ci) { ci.owner = ""; });
  with("tag order", [](auto& ci) { ci.tags = {"eu", "prod"}; });
  with("one tag less", [](auto& ci) { ci.tags = {"prod"}; });
  with("tags run together", [](auto& ci) { ci.tags = {"prodeu"}; });
  with("integer as double", [](auto& ci) { ci.attributes["memory_mb"] = 1024.0; });
  with("integer as text", [](auto& ci) { ci.attributes["memory_mb"] = "1024"; });
  with("attribute removed", [](auto& ci) { ci.attributes.erase("serial"); });
  with("null attribute", [](auto& ci) { ci.attributes["ip"] = nullptr; });
  with("nested value", [](auto& ci) { ci.attributes["disk"].as_object()["a"] = 2; });
  with("nested array order", [](auto& ci) {
    ci.attributes["disk"].as_object()["b"] = boost::json::parse(R"(["x", 1])");
  });
  with("key moved into a value", [](auto& ci) {
    ci.attributes.erase("serial");
    ci.attributes["serialS1"] = "";
  });
  with("redundancy", [](auto& ci) { ci.min_healthy = 2; });
  for (const auto& [what, ci] : changed) {
    EXPECT_NE(DigestOf(ci), DigestOf(base)) << what;
  }
  // The id, version and timestamps are not fields a row sets.
  model::ConfigurationItem later = base;
  later.id = 8;
  later.version = 5;
  later.updated_at = model::Timestamp{42};
  EXPECT_EQ(DigestOf(later), DigestOf(base));
}

model::CiType ServerType() {
  model::CiType type;
  type.name = "server";
  type.identify_by = {{"serial"}};
  return type;
}

TEST(ImportCache, ForgetAndRememberKeepTheIndexExact) {
  const model::CiType type = ServerType();
  ImportCache cache;
  std::shared_ptr<ImportCache::Type> entry = cache.Of("server");
  EXPECT_EQ(entry, cache.Of("server"));
  entry->Reset(type);
  model::ConfigurationItem a = Ci(R"({"serial": "S1"})");
  model::ConfigurationItem b = Ci(R"({"serial": "S2"})");
  b.id = 8;
  b.name = "db-02";
  entry->Remember(type, {a, b});  // built whole
  entry->snapshot = "1:1:";
  int used = 0;
  const auto* found = entry->index.Match(type, "x", IdentityIndex::Keys(type, a.attributes), used);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, IdentityIndex::Ids{7});

  // CI 7 changed its serial: forgotten under the old one, found under the new one, once.
  a.attributes["serial"] = "S9";
  entry->Forget(type, 7);
  entry->Remember(type, {a});
  EXPECT_EQ(entry->index.Match(
                type, "x", IdentityIndex::Keys(type, Ci(R"({"serial": "S1"})").attributes), used),
            nullptr);
  found = entry->index.Match(type, "x", IdentityIndex::Keys(type, a.attributes), used);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, IdentityIndex::Ids{7});
  EXPECT_EQ(entry->cis.at(7).digest, DigestOf(a));
  // Remembered again without a Forget (read twice by catch-ups): still one entry.
  entry->Remember(type, {a});
  found = entry->index.Match(type, "x", IdentityIndex::Keys(type, a.attributes), used);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->size(), 1U);
  // Deleted: gone from the index and the digests.
  entry->Forget(type, 8);
  EXPECT_EQ(entry->index.Match(type, "x", IdentityIndex::Keys(type, b.attributes), used), nullptr);
  EXPECT_FALSE(entry->cis.contains(8));

  // An import's own index over the kept one: its new CIs and the kept ones both match.
  IdentityIndex own;
  own.UseBase(type, entry->index, 1);
  own.Add(type, -1, "db-03", IdentityIndex::Keys(type, a.attributes));
  found = own.Match(type, "x", IdentityIndex::Keys(type, a.attributes), used);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->size(), 2U);
  EXPECT_EQ(entry->index.Match(type, "x", IdentityIndex::Keys(type, a.attributes), used)->size(),
            1U);  // the kept index is not changed by the import's
}

// What an import wrote joins the kept entry after its commit: an empty entry takes the import's
// own index, its pseudo ids replaced by the CIs' ids (a row never written is dropped); a
// non-empty one adds them, replacing the CIs the import changed.
TEST(ImportCache, WhatAnImportWroteJoinsTheEntryUnderItsIds) {
  const model::CiType type = ServerType();
  ImportCache cache;
  std::shared_ptr<ImportCache::Type> entry = cache.Of("server");
  entry->Reset(type);
  entry->Remember(type, {});
  IdentityIndex own;
  own.UseBase(type, entry->index, 3);
  const auto keys = [&](const std::string& serial) {
    return IdentityIndex::Keys(type, Ci(R"({"serial": ")" + serial + R"("})").attributes);
  };
  own.Add(type, -1, "a", keys("S1"));
  own.Add(type, -2, "b", keys("S2"));  // its row was not written
  own.Add(type, -3, "a", keys("S3"));
  own.MoveAddedInto(type, entry->index, {101, 0, 103});  // rows 0, 1 (not written) and 2
  int used = 0;
  const auto* found = entry->index.Match(type, "x", keys("S1"), used);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, IdentityIndex::Ids{101});
  EXPECT_EQ(entry->index.Match(type, "x", keys("S2"), used), nullptr);
  found = entry->index.Match(type, "a", {""}, used);  // by name
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, (IdentityIndex::Ids{101, 103}));
  EXPECT_EQ(entry->index.Match(type, "b", {""}, used), nullptr);

  entry->cis.emplace(101, ImportCache::Type::Known{{}, "a", keys("S1")});
  entry->cis.emplace(103, ImportCache::Type::Known{{}, "a", keys("S3")});
  // A later import renamed 101 and gave it a new serial, and created 104.
  entry->Add(type, 101, ImportCache::Type::Known{{}, "a2", keys("S9")});
  entry->Add(type, 104, ImportCache::Type::Known{{}, "d", keys("S4")});
  EXPECT_EQ(entry->index.Match(type, "x", keys("S1"), used), nullptr);
  found = entry->index.Match(type, "x", keys("S9"), used);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, IdentityIndex::Ids{101});
  found = entry->index.Match(type, "a", {""}, used);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, IdentityIndex::Ids{103});
  found = entry->index.Match(type, "x", keys("S4"), used);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, IdentityIndex::Ids{104});
  EXPECT_EQ(entry->cis.size(), 3U);
  EXPECT_EQ(entry->cis.at(101).name, "a2");
}

// Entries no import used for the idle time are dropped; one in use or used lately is kept.
TEST(ImportCache, IdleEntriesAreDropped) {
  const model::CiType type = ServerType();
  ImportCache cache;
  const auto t0 = std::chrono::steady_clock::now();
  std::shared_ptr<ImportCache::Type> nightly = cache.Of("server");
  nightly->Reset(type);
  nightly->Remember(type, {Ci(R"({"serial": "S1"})")});
  nightly->used = t0;
  std::shared_ptr<ImportCache::Type> busy = cache.Of("vm");
  busy->used = t0 - std::chrono::hours(100);
  // An import on another thread is using it.
  std::promise<void> held;
  std::promise<void> release;
  std::thread importer([&] {
    std::unique_lock importing(busy->in_use);
    held.set_value();
    release.get_future().wait();
  });
  held.get_future().wait();

  EXPECT_EQ(cache.DropIdle(t0 + std::chrono::hours(47), std::chrono::hours(48)), 0U);
  EXPECT_EQ(cache.Of("server"), nightly);
  EXPECT_EQ(cache.Of("vm"), busy);
  EXPECT_EQ(cache.DropIdle(t0 + std::chrono::hours(49), std::chrono::hours(48)), 1U);
  EXPECT_NE(cache.Of("server"), nightly);  // a new, empty entry
  EXPECT_TRUE(cache.Of("server")->cis.empty());
  EXPECT_EQ(cache.Of("vm"), busy);  // in use: kept
  release.set_value();
  importer.join();
  EXPECT_EQ(cache.DropIdle(t0 + std::chrono::hours(49), std::chrono::hours(48)), 0U);  // empty
  EXPECT_NE(cache.Of("vm"), busy);  // no longer in use: dropped
}

}  // namespace
}  // namespace cmdb::import
