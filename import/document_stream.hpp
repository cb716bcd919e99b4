#pragma once
// An import document read as it arrives: `{"cis": [...], "relations": [...]}` parsed
// incrementally (Boost.JSON's SAX parser), each row of the arrays it keeps built as a value
// of its own and handed out in batches, so that an import of millions of rows is read in
// memory bounded by a batch. Checks the JSON as model::ParseJson does (depth, UTF-8, no
// comments) and the document's shape as CheckImportDocumentShape does. Not thread-safe.

#include <cstdint>
#include <memory>
#include <string_view>

#include <boost/json/array.hpp>

namespace cmdb::import {

class ImportDocumentStream {
 public:
  // Which arrays' rows are kept for Take*(); the others are only checked and counted. When
  // both are kept, relation rows that come before the end of "cis" are not (a second reading
  // keeping only relations takes them): the caller writes CIs before the relations naming them.
  struct Keep {
    bool cis = false;
    bool relations = false;
  };

  explicit ImportDocumentStream(Keep keep);
  ~ImportDocumentStream();
  ImportDocumentStream(const ImportDocumentStream&) = delete;
  ImportDocumentStream& operator=(const ImportDocumentStream&) = delete;

  // The next bytes of the document. Throws kInvalidArgument when they are not JSON.
  void Write(std::string_view bytes);
  // The end of the document. Throws kInvalidArgument when it is incomplete, and
  // kValidationFailed (naming the fields) when it is not an import document.
  void Finish();

  // The kept rows completed since the last call, in order.
  boost::json::array TakeCis();
  boost::json::array TakeRelations();
  std::size_t pending_cis() const;
  std::size_t pending_relations() const;

  // Rows of each array seen so far, kept or not.
  std::int64_t cis_seen() const;
  std::int64_t relations_seen() const;
  // Whether the "cis" array has ended (or, after Finish, was absent).
  bool cis_ended() const;
  // Whether a "relations" row came before the end of "cis".
  bool relations_before_cis_ended() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cmdb::import
