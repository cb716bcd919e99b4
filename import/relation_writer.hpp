#pragma once
// The relation half of an import (internal to import/): each relation row read, its ends
// resolved (a CI id, or a CI of the estate or of this import named by type and name or
// identity), checked, and the new ones written through store::ImportStore. A relation
// recorded already, or twice in the document, is unchanged.

#include "import/import_state.hpp"

namespace cmdb::import {

void WriteRelations(ImportState& state);

}  // namespace cmdb::import
