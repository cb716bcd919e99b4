#include "import/validation.hpp"

#include "model/parallel.hpp"
#include "store/ci_type_repository.hpp"

namespace cmdb::import {

using model::FieldErrors;
namespace json = boost::json;

namespace {

void AddCi(ImportState& state, std::string label, const json::value& body) {
  CiRow row;
  row.label = std::move(label);
  row.given = &body;
  FieldErrors errors;
  row.draft = model::CiFromJson(body, errors, model::ReadOnlyFields::kIgnore);
  state.Report(row.label, errors);
  row.action = errors.empty() ? Action::kCreate : Action::kRejected;
  state.rows.push_back(std::move(row));
}

}  // namespace

void AddCis(ImportState& state, const json::array& cis) {
  const std::size_t first = state.rows.size();
  state.rows.resize(first + cis.size());
  std::vector<FieldErrors> errors(cis.size());
  model::ParallelFor(cis.size(),
                     [&](std::size_t i) {
                       CiRow& row = state.rows[first + i];
                       row.label = "cis[" + std::to_string(state.ci_offset + i) + "]";
                       row.given = &cis[i];
                       row.draft =
                           model::CiFromJson(cis[i], errors[i], model::ReadOnlyFields::kIgnore);
                       row.action = errors[i].empty() ? Action::kCreate : Action::kRejected;
                     },
                     {});
  for (std::size_t i = 0; i < cis.size(); ++i) state.Report(state.rows[first + i].label, errors[i]);
}

void AddOwnedCi(ImportState& state, std::string label, json::value body) {
  auto owned = std::make_unique<json::value>(std::move(body));
  AddCi(state, std::move(label), *owned);
  state.rows.back().owned = std::move(owned);
}

void AddRowError(ImportState& state, const std::string& label, const std::string& field,
                 const std::string& message) {
  state.AddError({label, field, message});
  CiRow row;
  row.label = label;
  row.action = Action::kRejected;
  state.rows.push_back(std::move(row));
}

void LoadTypes(ImportState& state) {
  if (!state.types.empty()) return;
  state.AwaitWrite();
  for (model::CiType& type : store::CiTypeRepository(state.db).List()) {
    state.types.emplace(type.name, std::move(type));
  }
}

void ValidateRows(ImportState& state) {
  LoadTypes(state);
  std::vector<FieldErrors> errors(state.rows.size());
  model::ParallelFor(state.rows.size(),
                     [&](std::size_t i) {
                       CiRow& row = state.rows[i];
                       if (row.action == Action::kRejected) return;
                       auto type = state.types.find(row.draft.type);
                       if (type == state.types.end()) {
                         errors[i].Add("type", "unknown CI type '" + row.draft.type + "'");
                         return;
                       }
                       model::ValidateCi(type->second, row.draft, errors[i]);
                       if (errors[i].empty())
                         row.keys = IdentityIndex::Keys(type->second, row.draft.attributes);
                     },
                     {});
  for (std::size_t i = 0; i < state.rows.size(); ++i) {
    if (errors[i].empty()) continue;
    state.Report(state.rows[i].label, errors[i]);
    state.rows[i].action = Action::kRejected;
  }
}

}  // namespace cmdb::import
