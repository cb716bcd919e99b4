#include "import/document_stream.hpp"

#include <cmath>
#include <optional>
#include <string>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/value_stack.hpp>

#include "model/error.hpp"
#include "model/json.hpp"

namespace cmdb::import {

namespace json = boost::json;
using model::Error;
using model::ErrorCode;

namespace {

enum class Array { kNone, kCis, kRelations };

// The parser's events, turned into rows. Levels count the open containers: the document is
// level 1, the arrays "cis" and "relations" level 2, a row's own containers level 3 and up.
struct Handler {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  explicit Handler(ImportDocumentStream::Keep k) : keep(k) {
    NewStorage(pending_cis);
    NewStorage(pending_relations);
  }

  ImportDocumentStream::Keep keep;
  int level = 0;
  bool not_object = false;    // the document is not an object
  Array key = Array::kNone;   // the array the last key at level 1 named
  Array open = Array::kNone;  // the array being read (level >= 2)
  bool seen_cis = false;
  bool seen_relations = false;
  bool cis_ended = false;
  bool relations_early = false;
  bool building = false;    // a kept row is being built on `stack`
  bool string_row = false;  // a row that is a string arriving in parts has begun
  std::int64_t cis_seen = 0;
  std::int64_t relations_seen = 0;
  std::string key_text;
  model::FieldErrors shape;
  json::value_stack stack;
  // The rows pending, each array in a monotonic resource of its own that goes with the batch.
  // (An array keeps the storage it was made with: a new batch is a new array.)
  std::optional<json::array> pending_cis;
  std::optional<json::array> pending_relations;

  static void NewStorage(std::optional<json::array>& pending) {
    pending.emplace(json::make_shared_resource<json::monotonic_resource>());
  }

  json::array& Pending() { return open == Array::kCis ? *pending_cis : *pending_relations; }

  bool Kept(Array a) const {
    if (a == Array::kCis) return keep.cis;
    // Relations before the end of "cis" wait for a second reading when CIs are kept too.
    return a == Array::kRelations && keep.relations && (!keep.cis || cis_ended);
  }

  // A value begins at level 2: a row of the open array.
  void RowBegins() {
    if (open == Array::kCis) ++cis_seen;
    if (open == Array::kRelations) {
      ++relations_seen;
      if (!cis_ended) relations_early = true;
    }
    if (Kept(open)) {
      stack.reset(Pending().storage());
      building = true;
    }
  }

  void RowEnds() {
    if (!building) return;
    building = false;
    // A row begun before its batch was taken lands in the next batch's memory (one copy).
    Pending().push_back(stack.release());
  }

  // A container or scalar begins; true when it is to be pushed on the stack.
  bool ValueBegins(bool is_array) {
    if (level == 0) {  // a scalar document (containers are told apart before)
      not_object = true;
      return false;
    }
    if (level == 1) {
      if (key == Array::kNone) return false;  // a field reported already
      const bool cis = key == Array::kCis;
      if (!is_array)
        shape.Add(cis ? "cis" : "relations",
                  cis ? "must be an array of CIs" : "must be an array of relations");
      return false;
    }
    if (level == 2 && open != Array::kNone) RowBegins();
    return building;
  }

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }

  bool on_object_begin(boost::system::error_code&) {
    if (level == 0) {
      ++level;
      return true;
    }
    ValueBegins(false);
    ++level;
    return true;
  }
  bool on_array_begin(boost::system::error_code&) {
    if (level == 0) {
      not_object = true;
      ++level;
      return true;
    }
    if (level == 1 && key != Array::kNone) {
      ++level;
      open = key;
      return true;
    }
    ValueBegins(true);
    ++level;
    return true;
  }
  bool ContainerEnds(bool is_array, std::size_t n) {
    --level;
    if (level >= 2 && building) {
      if (is_array) {
        stack.push_array(n);
      } else {
        stack.push_object(n);
      }
      if (level == 2) RowEnds();
    } else if (level == 1 && open != Array::kNone) {
      if (open == Array::kCis) cis_ended = true;
      open = Array::kNone;
    }
    return true;
  }
  bool on_object_end(std::size_t n, boost::system::error_code&) { return ContainerEnds(false, n); }
  bool on_array_end(std::size_t n, boost::system::error_code&) { return ContainerEnds(true, n); }

  bool on_key_part(json::string_view s, std::size_t, boost::system::error_code&) {
    if (level == 1) {
      key_text.append(s.data(), s.size());
    } else if (building) {
      stack.push_chars(s);
    }
    return true;
  }
  bool on_key(json::string_view s, std::size_t, boost::system::error_code&) {
    if (level == 1) {
      key_text.append(s.data(), s.size());
      key = Array::kNone;
      if (key_text == "cis" || key_text == "relations") {
        bool& seen = key_text == "cis" ? seen_cis : seen_relations;
        if (seen) {
          shape.Add(key_text, "appears more than once");
        } else {
          key = key_text == "cis" ? Array::kCis : Array::kRelations;
        }
        seen = true;
      } else {
        shape.Add(key_text, "is not a field of an import");
      }
      key_text.clear();
    } else if (building) {
      stack.push_key(s);
    }
    return true;
  }

  // A scalar at `level`: pushed when a row is being built, a row of its own at level 2.
  template <typename Push>
  bool Scalar(Push push) {
    if (level == 2 && open != Array::kNone && !building) {
      RowBegins();
      if (building) {
        push();
        RowEnds();
      }
      return true;
    }
    if (building) {
      push();
    } else if (level <= 1) {
      ValueBegins(false);
    }
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, boost::system::error_code&) {
    // A string row arriving in parts: its row begins with the first part.
    if (level == 2 && open != Array::kNone && !string_row) {
      string_row = true;
      RowBegins();
    }
    if (building) stack.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, boost::system::error_code&) {
    if (string_row) {  // the last part of a string row
      string_row = false;
      if (building) {
        stack.push_string(s);
        RowEnds();
      }
      return true;
    }
    return Scalar([&] { stack.push_string(s); });
  }
  bool on_number_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t i, json::string_view, boost::system::error_code&) {
    return Scalar([&] { stack.push_int64(i); });
  }
  bool on_uint64(std::uint64_t u, json::string_view, boost::system::error_code&) {
    return Scalar([&] { stack.push_uint64(u); });
  }
  bool on_double(double d, json::string_view, boost::system::error_code& ec) {
    if (!std::isfinite(d)) {  // 1e999: no JSON can hold it, nor can the database
      ec = json::error::exponent_overflow;
      return false;
    }
    return Scalar([&] { stack.push_double(d); });
  }
  bool on_bool(bool b, boost::system::error_code&) {
    return Scalar([&] { stack.push_bool(b); });
  }
  bool on_null(boost::system::error_code&) {
    return Scalar([&] { stack.push_null(); });
  }
  bool on_comment_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(json::string_view, boost::system::error_code&) { return true; }
};

json::parse_options Options() {
  json::parse_options options;
  options.max_depth = model::kMaxJsonDepth;
  options.allow_comments = false;
  options.allow_trailing_commas = false;
  options.allow_invalid_utf8 = false;
  return options;
}

[[noreturn]] void ThrowNotJson(const boost::system::error_code& ec) {
  std::string reason = ec.message();
  if (ec == json::error::too_deep) {
    reason = "nesting deeper than " + std::to_string(model::kMaxJsonDepth) + " levels";
  } else if (ec == json::error::exponent_overflow) {
    reason = "a number beyond the range of a double";
  }
  throw Error(ErrorCode::kInvalidArgument, "request body is not valid JSON: " + reason);
}

}  // namespace

struct ImportDocumentStream::Impl {
  explicit Impl(Keep keep) : parser(Options(), keep) {}
  json::basic_parser<Handler> parser;
  Handler& handler() { return parser.handler(); }
};

ImportDocumentStream::ImportDocumentStream(Keep keep) : impl_(std::make_unique<Impl>(keep)) {}

ImportDocumentStream::~ImportDocumentStream() = default;

void ImportDocumentStream::Write(std::string_view bytes) {
  boost::system::error_code ec;
  impl_->parser.write_some(true, bytes.data(), bytes.size(), ec);
  if (ec) ThrowNotJson(ec);
}

void ImportDocumentStream::Finish() {
  boost::system::error_code ec;
  impl_->parser.write_some(false, nullptr, 0, ec);
  if (ec) ThrowNotJson(ec);
  Handler& h = impl_->handler();
  if (h.not_object) {
    throw Error(ErrorCode::kInvalidArgument,
                R"(an import document is an object {"cis": [...], "relations": [...]})");
  }
  if (!h.seen_cis && !h.seen_relations) h.shape.Add("cis", "is required (or relations)");
  h.shape.ThrowIfAny("the import document has the wrong shape");
  if (!h.seen_cis) h.cis_ended = true;
}

json::array ImportDocumentStream::TakeCis() {
  Handler& h = impl_->handler();
  json::array out = std::move(*h.pending_cis);
  Handler::NewStorage(h.pending_cis);
  return out;
}

json::array ImportDocumentStream::TakeRelations() {
  Handler& h = impl_->handler();
  json::array out = std::move(*h.pending_relations);
  Handler::NewStorage(h.pending_relations);
  return out;
}

std::size_t ImportDocumentStream::pending_cis() const {
  return impl_->parser.handler().pending_cis->size();
}
std::size_t ImportDocumentStream::pending_relations() const {
  return impl_->parser.handler().pending_relations->size();
}
std::int64_t ImportDocumentStream::cis_seen() const { return impl_->parser.handler().cis_seen; }
std::int64_t ImportDocumentStream::relations_seen() const {
  return impl_->parser.handler().relations_seen;
}
bool ImportDocumentStream::cis_ended() const { return impl_->parser.handler().cis_ended; }
bool ImportDocumentStream::relations_before_cis_ended() const {
  return impl_->parser.handler().relations_early;
}

}  // namespace cmdb::import
