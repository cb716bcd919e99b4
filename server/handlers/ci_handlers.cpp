#include <boost/json.hpp>

#include "model/ci_type.hpp"
#include "server/handlers/handlers.hpp"
#include "store/ci_reader.hpp"
#include "store/ci_repository.hpp"
#include "store/db_pool.hpp"

namespace cmdb::server::handlers {

using model::Error;
using model::ErrorCode;

namespace {

Response CiResponse(int status, const model::ConfigurationItem& ci) {
  return ResourceResponse(status, model::CiToJson(ci), ci.version,
                          "/api/v1/cis/" + std::to_string(ci.id));
}

}  // namespace

Response ListCis(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {"type", "status", "owner", "tag", "q", "as_of", "limit", "cursor"},
                   /*allow_attr=*/true);
  store::CiFilter filter;
  filter.limit = ParseLimit(request);
  filter.after = DecodeCursor(request);
  filter.as_of = ParseAsOf(request);
  for (const auto& [key, value] : request.query) {
    // An empty filter (`?type=`) means no filter, as forms and scripts send them.
    if (value.empty() && key != "tag" && key.rfind("attr.", 0) != 0) continue;
    if (key == "type") filter.type = value;
    if (key == "status") {
      if (!model::IsValidCiStatus(value)) {
        throw Error(ErrorCode::kInvalidArgument,
                    "status must be one of planned, active, maintenance, retired");
      }
      filter.status = value;
    }
    if (key == "owner") filter.owner = value;
    if (key == "tag") filter.tags.push_back(value);
    if (key == "q") filter.q = value;
    if (key.rfind("attr.", 0) == 0) {
      std::string name = key.substr(5);
      if (!model::IsValidIdentifier(name)) {
        throw Error(ErrorCode::kInvalidArgument,
                    "attr.<name> needs an attribute name such as attr.hostname");
      }
      filter.attrs.emplace_back(std::move(name), value);
    }
  }
  store::DbSession session = ctx.db->Lease();
  store::CiPage page = store::CiRepository(session).List(filter);
  boost::json::array items;
  items.reserve(page.items.size());
  for (const auto& ci : page.items) items.emplace_back(model::CiToJson(ci));
  boost::json::object body{{"items", std::move(items)}};
  body["next_cursor"] = page.next_after ? boost::json::value(EncodeCursor(*page.next_after))
                                        : boost::json::value(nullptr);
  return JsonResponse(200, body);
}

namespace {

// A CI written, as the dependency graph holds it.
graph::GraphChanges CiWritten(const model::ConfigurationItem& ci) {
  graph::GraphChanges changes;
  changes.ci_ids = {ci.id};
  changes.cis = {
      {ci.id, ci.type, ci.name, ci.status, static_cast<std::int32_t>(ci.min_healthy.value_or(0))}};
  return changes;
}

}  // namespace

Response CreateCi(const Request& request, const PathParams&, AppContext& ctx) {
  CheckQueryParams(request, {});
  boost::json::value body = ParseJsonBody(request);
  model::FieldErrors errors;
  model::ConfigurationItem draft = model::CiFromJson(body, errors);
  store::DbSession session = ctx.db->Lease();
  if (!errors.empty()) {
    // Report the attribute problems in the same response as the field problems.
    store::CiRepository(session).Validate(draft, errors);
    errors.ThrowIfAny("the CI is invalid");
  }
  model::ConfigurationItem created = store::CiRepository(session).Create(draft, Writer(request));
  GraphChanged(ctx, CiWritten(created));
  return CiResponse(201, created);
}

Response GetCi(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"as_of"});
  model::CiId id = ParseId(params.at("id"), "CI id");
  std::optional<model::Timestamp> as_of = ParseAsOf(request);
  store::DbSession session = ctx.db->Lease();
  std::optional<model::ConfigurationItem> ci = store::CiRepository(session).FindById(id, as_of);
  if (!ci) {
    throw Error(ErrorCode::kNotFound, "CI " + std::to_string(id) + " does not exist" +
                                          (as_of ? " at " + model::FormatTimestamp(*as_of) : ""));
  }
  return CiResponse(200, *ci);
}

bool StartGetCi(const Request& request, const PathParams& params, AppContext& ctx, Answer answer) {
  if (ctx.ci_reader == nullptr || !request.query.empty()) return false;
  const model::CiId id = ParseId(params.at("id"), "CI id");
  return ctx.ci_reader->Read(
      id, [id, answer = std::move(answer)](std::optional<model::ConfigurationItem> ci,
                                           const std::exception_ptr& error) {
        answer([&]() -> Response {
          if (error) std::rethrow_exception(error);
          if (!ci)
            throw Error(ErrorCode::kNotFound, "CI " + std::to_string(id) + " does not exist");
          return CiResponse(200, *ci);
        });
      });
}

Response PatchCi(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::CiId id = ParseId(params.at("id"), "CI id");
  boost::json::value patch = ParseJsonBody(request);
  if (!patch.is_object()) {
    throw Error(ErrorCode::kInvalidArgument, "a merge patch (RFC 7396) must be a JSON object");
  }
  std::optional<std::int64_t> if_match = ParseIfMatch(request);
  store::DbSession session = ctx.db->Lease();
  model::ConfigurationItem patched =
      store::CiRepository(session).Patch(id, patch, if_match, Writer(request));
  // The graph holds names, statuses and redundancy; an attribute-only patch leaves it as is.
  const boost::json::object* fields = patch.if_object();
  if (fields == nullptr || fields->contains("name") || fields->contains("status") ||
      fields->contains("redundancy") || fields->contains("type")) {
    GraphChanged(ctx, CiWritten(patched));
  }
  return CiResponse(200, patched);
}

Response DeleteCi(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {});
  model::CiId id = ParseId(params.at("id"), "CI id");
  std::optional<std::int64_t> if_match = ParseIfMatch(request);
  store::DbSession session = ctx.db->Lease();
  store::CiRepository(session).Delete(id, if_match, Writer(request));
  GraphChanged(ctx);
  return NoContent();
}

Response GetCiHistory(const Request& request, const PathParams& params, AppContext& ctx) {
  CheckQueryParams(request, {"limit", "cursor"});
  model::CiId id = ParseId(params.at("id"), "CI id");
  const int limit = ParseLimit(request);
  const std::int64_t before = DecodeCursor(request);
  store::DbSession session = ctx.db->Lease();
  return HistoryPage(store::CiRepository(session).History(
                         id, limit + 1, before > 0 ? std::optional(before) : std::nullopt),
                     limit);
}

}  // namespace cmdb::server::handlers
