#pragma once
// The first step of an import (internal to import/): reading each CI row into a draft and
// validating it against its type, every problem reported under the row's label.

#include <string>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include "import/import_state.hpp"

namespace cmdb::import {

// Every CI of an import document, read on all cores; `cis` must outlive the import.
void AddCis(ImportState& state, const boost::json::array& cis);
// One row the caller does not keep (a CSV line).
void AddOwnedCi(ImportState& state, std::string label, boost::json::value body);
// A row that could not even be read (a CSV line of the wrong width).
void AddRowError(ImportState& state, const std::string& label, const std::string& field,
                 const std::string& message);

// Loads every CI type, once per import.
void LoadTypes(ImportState& state);

// Loads the CI types, then checks each readable row against its type on all cores and
// computes the identity keys of the valid ones. Problems are reported in row order.
void ValidateRows(ImportState& state);

}  // namespace cmdb::import
