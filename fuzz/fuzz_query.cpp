// Request targets and the parameters of list endpoints: the path and query as the server
// splits them (percent-decoding), then the filters, paging (limit, cursor), as_of, If-Match and
// the typed parameters as the handlers read them. Anything but a model::Error is a bug, and a
// cursor the server wrote reads back as the position it encodes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "model/ci_type.hpp"
#include "model/configuration_item.hpp"
#include "model/error.hpp"
#include "server/handlers/handlers.hpp"
#include "server/http_types.hpp"

namespace {

template <typename Fn>
void Refusable(Fn fn) {
  try {
    fn();
  } catch (const cmdb::model::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cmdb::server;  // NOLINT(google-build-using-namespace)
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Request request;
  request.target = std::string(text);
  if (!ParseTarget(request.target, request.path, request.query)) return 0;
  request.headers.emplace_back("if-match", request.path);
  Refusable([&] {
    handlers::CheckQueryParams(
        request, {"type", "status", "owner", "tag", "q", "as_of", "limit", "cursor"}, true);
  });
  Refusable([&] { handlers::ParseLimit(request); });
  Refusable([&] { handlers::ParseAsOf(request); });
  Refusable([&] { handlers::ParseIfMatch(request); });
  Refusable([&] { handlers::OptionalIdParam(request, "ci"); });
  Refusable([&] { handlers::ParseBoolParam(request, "authorized"); });
  Refusable([&] {
    const std::int64_t after = handlers::DecodeCursor(request);
    if (after > 0) {
      Request again;
      again.query.emplace_back("cursor", handlers::EncodeCursor(after));
      CMDB_FUZZ_CHECK(handlers::DecodeCursor(again) == after);
    }
  });
  for (const auto& [key, value] : request.query) {
    cmdb::model::IsValidCiStatus(value);
    if (key.rfind("attr.", 0) == 0) cmdb::model::IsValidIdentifier(key.substr(5));
  }
  return 0;
}
