#pragma once
// A run's decision log as it is stored: blocks of kDecisionBlock observations, each a JSON
// array compressed as one LZ4 block with its outcome counts (0012_compressed_decision_log.sql),
// and the reading of a page of decisions back from such blocks. Pure; thread-safe.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "discovery/reconcile.hpp"
#include "model/discovery_run.hpp"

namespace cmdb::discovery {

inline constexpr std::size_t kDecisionBlock = 500;

// The blocks of `decisions` (in observation order); each decision is marked a dry run's when
// `dry_run`.
std::vector<model::DecisionBlock> EncodeDecisionLog(const std::vector<Decision>& decisions,
                                                    bool dry_run);

// The decisions of a block, as a JSON array. Throws Error{kInternal} for a damaged block.
boost::json::array DecodeDecisionBlock(const model::DecisionBlock& block);

// Up to `limit` decisions after observation `after`, of one outcome when given.
// `next_blocks(after_seq)` returns the next few stored blocks holding observations after
// `after_seq` (of that outcome), in order, and none when there are no more.
model::DecisionPage PageDecisions(
    const std::function<std::vector<model::DecisionBlock>(std::int64_t after_seq)>& next_blocks,
    const std::optional<std::string>& outcome, std::int64_t after, int limit);

}  // namespace cmdb::discovery
