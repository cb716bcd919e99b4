#include "discovery/collector.hpp"

#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "model/error.hpp"
#include "model/json.hpp"

namespace cmdb::discovery {

using model::Error;
using model::ErrorCode;
using model::SourceKind;

namespace {

constexpr std::uintmax_t kMaxInputFile = std::uintmax_t{256} * 1024 * 1024;

std::string ReadInputFile(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorCode::kInvalidArgument, "cannot read '" + path + "': " + ec.message());
  if (size > kMaxInputFile) {
    throw Error(ErrorCode::kInvalidArgument, "'" + path + "' is larger than 256 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool IsJsonType(std::string_view t) {
  return t.empty() || t == "application/json" ||
         (t.size() > 5 && t.compare(t.size() - 5, 5, "+json") == 0);
}

// A source whose input is a body or, without one, a file the source's config.path names.
void RequireInput(const CollectInput& in, std::string_view what) {
  if (in.payload.empty() && in.source.config.path.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "no input: post the " + std::string(what) +
                    " as the run's body, or set the source's config.path");
  }
}

class NmapCollector : public Collector {
 public:
  std::vector<Observation> Collect(const CollectInput& in) const override {
    RequireInput(in, "nmap -oX report");
    if (!in.payload.empty() && !in.content_type.empty() && in.content_type != "application/xml" &&
        in.content_type != "text/xml") {
      throw Error(ErrorCode::kInvalidArgument,
                  "an nmap report is application/xml, not " + std::string(in.content_type));
    }
    return ParseNmapXml(in.payload.empty() ? ReadInputFile(in.source.config.path) : in.payload);
  }
};

class AnsibleCollector : public Collector {
 public:
  std::vector<Observation> Collect(const CollectInput& in) const override {
    RequireInput(in, "ansible facts file");
    if (!in.payload.empty()) {
      if (!IsJsonType(in.content_type)) {
        throw Error(ErrorCode::kInvalidArgument,
                    "ansible facts are application/json, not " + std::string(in.content_type));
      }
      return {ParseAnsibleFacts(in.payload)};
    }
    const std::string& path = in.source.config.path;
    if (std::filesystem::is_directory(path)) return ReadAnsibleTree(path);
    return {
        ParseAnsibleFacts(ReadInputFile(path), std::filesystem::path(path).filename().string())};
  }
};

class LocalHostCollector : public Collector {
 public:
  std::vector<Observation> Collect(const CollectInput& in) const override {
    if (!in.payload.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "a local_host run observes this machine; it takes no body");
    }
    return {CollectLocalHost()};
  }
};

class AgentCollector : public Collector {
 public:
  std::vector<Observation> Collect(const CollectInput& in) const override {
    if (in.payload.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "an agent run needs its observations as the body");
    }
    if (!IsJsonType(in.content_type)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "agent observations are application/json, not " + std::string(in.content_type));
    }
    return ParseAgentPayload(model::ParseJson(in.payload));
  }
};

struct Registration {
  SourceKind kind;
  std::unique_ptr<Collector> collector;
};

// The one place collectors are registered, by kind.
const std::array<Registration, model::kSourceKinds.size()>& Registry() {
  static const std::array<Registration, model::kSourceKinds.size()> registry{{
      {SourceKind::kNmapXml, std::make_unique<NmapCollector>()},
      {SourceKind::kAnsibleFacts, std::make_unique<AnsibleCollector>()},
      {SourceKind::kLocalHost, std::make_unique<LocalHostCollector>()},
      {SourceKind::kAgent, std::make_unique<AgentCollector>()},
  }};
  return registry;
}

}  // namespace

const Collector& CollectorFor(SourceKind kind) {
  for (const Registration& r : Registry()) {
    if (r.kind == kind) return *r.collector;
  }
  throw Error(ErrorCode::kInternal,
              "no collector for source kind " + std::string(model::SourceKindName(kind)));
}

std::vector<Observation> Collect(const model::DiscoverySource& source,
                                 std::string_view content_type, std::string_view payload) {
  return CollectorFor(source.kind).Collect({source, content_type, payload});
}

}  // namespace cmdb::discovery
