#include "auth/accounts.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include "auth/token.hpp"
#include "model/error.hpp"
#include "model/log.hpp"
#include "store/discovery_source_repository.hpp"
#include "store/transaction.hpp"
#include "store/user_repository.hpp"

namespace cmdb::auth {

using model::Error;
using model::ErrorCode;
using model::Role;
using model::RoleSet;

namespace {

IssuedToken StoreToken(store::UserRepository& users, const std::string& pepper,
                       const model::User& user, std::int64_t id, const std::string& text,
                       const std::string& prefix, const std::string& name,
                       std::optional<RoleSet> roles, std::optional<model::Timestamp> expires_at,
                       const std::string& created_by) {
  store::TokenDraft draft;
  draft.id = id;
  draft.user_id = user.id;
  draft.name = name;
  draft.roles = roles;
  draft.expires_at = expires_at;
  draft.digest = KeyedHash(pepper, text);
  draft.prefix = prefix;
  return IssuedToken{users.InsertToken(draft, created_by), text};
}

model::Timestamp DaysFromNow(int days) {
  return model::Timestamp{model::Timestamp::Now().micros + std::int64_t{days} * 86'400'000'000};
}

}  // namespace

IssuedToken IssueToken(store::DbSession& db, const std::string& pepper, const model::User& user,
                       const std::string& name, std::optional<RoleSet> roles,
                       std::optional<model::Timestamp> expires_at, const std::string& created_by) {
  if (roles && !(roles->AllowedBy(user.roles) == *roles)) {
    throw Error(ErrorCode::kValidationFailed, "a token carries only roles its user holds",
                {{"roles", "user '" + user.name + "' holds only " + user.roles.Describe()}});
  }
  store::UserRepository users(db);
  const std::int64_t id = users.ReserveTokenId();
  return StoreToken(users, pepper, user, id, NewTokenText(id), TokenPrefix(id), name, roles,
                    expires_at, created_by);
}

std::optional<store::TokenGrant> FindMatchingGrant(store::UserRepository& users,
                                                   std::string_view token,
                                                   const store::TokenDigest& digest) {
  const std::optional<std::int64_t> id = TokenId(token);
  std::optional<store::TokenGrant> grant =
      id ? users.FindGrant(*id) : users.FindGrantByDigest(digest);
  // The stored hash is compared in constant time: nothing about it leaks through timing.
  if (grant && !SameDigest(grant->digest, digest)) grant.reset();
  return grant;
}

std::string Refusal(const store::TokenGrant& grant, model::Timestamp now) {
  if (grant.revoked_at)
    return "the token was revoked at " + model::FormatTimestamp(*grant.revoked_at);
  if (grant.expires_at && *grant.expires_at <= now) {
    return "the token expired at " + model::FormatTimestamp(*grant.expires_at);
  }
  if (!grant.user_active) return "the token's user '" + grant.principal.user + "' is deactivated";
  if (grant.principal.roles.empty()) return "the token carries no role its user still holds";
  return "";
}

void CheckPepper(store::DbSession& db, const std::string& pepper) {
  const std::string hex = store::DigestHex(KeyedHash(pepper, "cmdb token pepper check"));
  store::UserRepository users(db);
  if (users.SettingOrInsert("token_pepper_check", hex) != hex) {
    throw Error(ErrorCode::kUnavailable,
                "this server's token pepper differs from the one the database's tokens were "
                "hashed with: give every instance the same CMDB_TOKEN_PEPPER (or the data "
                "folder's token-pepper file)");
  }
}

BootstrapOutcome Bootstrap(store::DbSession& db, const std::string& pepper,
                           const std::string& bootstrap_token) {
  BootstrapOutcome outcome;
  store::Transaction tr(db);
  store::UserRepository users(db);
  // One instance bootstraps at a time: the others wait here, then find the admin.
  users.LockBootstrap();
  if (users.AnyActiveAdmin()) {
    outcome.bootstrap_ignored = !bootstrap_token.empty();
    return outcome;
  }
  if (!bootstrap_token.empty() && !IsValidBootstrapToken(bootstrap_token)) {
    throw Error(ErrorCode::kInvalidArgument,
                "CMDB_BOOTSTRAP_TOKEN must be 32 to 128 characters of A-Za-z0-9_-");
  }
  model::User admin;
  if (std::optional<model::User> existing = users.Find("admin")) {
    admin = users.Update("admin", std::nullopt, [](model::User& u) {
      u.roles.Add(Role::kAdmin);
      u.active = true;
    });
  } else {
    admin.name = "admin";
    admin.display_name = "Administrator";
    admin.roles = RoleSet{Role::kAdmin};
    admin = users.Create(admin);
  }
  const std::int64_t id = users.ReserveTokenId();
  const bool given = !bootstrap_token.empty();
  const std::string text = given ? bootstrap_token : NewTokenText(id);
  if (given) {
    // The token the operator chose may be stored already: an earlier bootstrap of an admin
    // since deactivated, now active again with it.
    if (auto old = users.FindGrantByDigest(KeyedHash(pepper, text))) {
      if (old->principal.user_id != admin.id || old->revoked_at) {
        throw Error(ErrorCode::kConflict, "CMDB_BOOTSTRAP_TOKEN was used before (token " +
                                              std::to_string(old->principal.token_id) +
                                              ") and is revoked or not admin's; choose a new one");
      }
      tr.Commit();
      outcome.created = true;
      outcome.token = text;
      return outcome;
    }
  }
  IssuedToken issued =
      StoreToken(users, pepper, admin, id, text, given ? std::string("bootstrap") : TokenPrefix(id),
                 given ? "bootstrap" : "first start", std::nullopt, std::nullopt, "bootstrap");
  tr.Commit();
  outcome.created = true;
  outcome.token = issued.text;
  return outcome;
}

std::map<std::string, std::string> DemoAccounts(store::DbSession& db, const std::string& pepper,
                                                const std::map<std::string, std::string>& keep) {
  struct Demo {
    const char* key;
    const char* name;
    const char* display;
    Role role;
    std::optional<int> tier;
  };
  static const Demo kDemo[] = {
      {"admin", "admin", "Administrator", Role::kAdmin, std::nullopt},
      {"viewer", "demo-viewer", "Vera Viewer", Role::kViewer, std::nullopt},
      {"asset_admin", "demo-asset-admin", "Arne Assets", Role::kAssetAdmin, std::nullopt},
      {"change_reviewer", "demo-reviewer", "Chen Reviewer", Role::kChangeReviewer, std::nullopt},
      {"incident_handler", "demo-handler-1", "Ines Handler (first line)", Role::kIncidentHandler,
       1},
      {"incident_handler_tier2", "demo-handler-2", "Hugo Handler (second line)",
       Role::kIncidentHandler, 2},
      {"group_lead", "demo-lead-1", "Gao Lead (first line)", Role::kGroupLead, 1},
      {"quality_auditor", "demo-quality", "Quinn Quality", Role::kQualityAuditor, std::nullopt},
      {"auditor", "demo-auditor", "Aud Itor", Role::kAuditor, std::nullopt},
      {"discovery_agent", "demo-agent", "Demo agent", Role::kDiscoveryAgent, std::nullopt},
  };
  std::map<std::string, std::string> tokens;
  store::UserRepository users(db);
  for (const Demo& d : kDemo) {
    auto kept = keep.find(d.key);
    if (kept != keep.end()) {
      const std::optional<store::TokenGrant> grant =
          FindMatchingGrant(users, kept->second, KeyedHash(pepper, kept->second));
      if (grant && Refusal(*grant, model::Timestamp::Now()).empty()) {
        tokens[d.key] = kept->second;
        continue;
      }
    }
    std::optional<model::User> user = users.Find(d.name);
    if (!user) {
      model::User u;
      u.name = d.name;
      u.display_name = d.display;
      u.roles = RoleSet{d.role};
      u.tier = d.tier;
      if (d.role == Role::kDiscoveryAgent) {
        store::DiscoverySourceRepository sources(db);
        for (const auto& s : sources.List()) {
          if (s.name == "demo-agent") u.source_id = s.id;
        }
        if (!u.source_id) {
          model::DiscoverySource source;
          source.name = "demo-agent";
          source.kind = model::SourceKind::kAgent;
          u.source_id = sources.Create(source).id;
        }
      }
      user = users.Create(u);
    }
    if (!user->active) continue;
    tokens[d.key] =
        IssueToken(db, pepper, *user, "demo", std::nullopt, DaysFromNow(kDefaultTokenDays), "demo")
            .text;
  }
  return tokens;
}

void WriteSecretFile(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  ::unlink(temporary.c_str());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw Error(ErrorCode::kUnavailable,
                "cannot create " + temporary + ": " + std::strerror(errno));
  }
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!written || !synced || std::rename(temporary.c_str(), path.c_str()) != 0) {
    ::unlink(temporary.c_str());
    throw Error(ErrorCode::kUnavailable, "cannot write " + path);
  }
}

}  // namespace cmdb::auth
