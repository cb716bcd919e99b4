#include "discovery/decision_log.hpp"

#include "discovery/compression.hpp"
#include "model/json.hpp"

namespace cmdb::discovery {

namespace json = boost::json;

std::vector<model::DecisionBlock> EncodeDecisionLog(const std::vector<Decision>& decisions,
                                                    bool dry_run) {
  std::vector<model::DecisionBlock> blocks;
  std::string text;
  for (std::size_t first = 0; first < decisions.size(); first += kDecisionBlock) {
    const std::size_t last = std::min(decisions.size(), first + kDecisionBlock);
    model::DecisionBlock block;
    text = "[";
    for (std::size_t i = first; i < last; ++i) {
      const Decision& d = decisions[i];
      if (i > first) text += ',';
      d.AppendJson(text, dry_run);
      json::value& count = block.outcomes[OutcomeName(d.outcome)];
      count = count.is_int64() ? count.get_int64() + 1 : 1;
    }
    text += ']';
    block.first_seq = decisions[first].seq;
    block.last_seq = decisions[last - 1].seq;
    block.compressed = Lz4Compress(text);
    block.bytes = static_cast<std::int64_t>(text.size());
    blocks.push_back(std::move(block));
  }
  return blocks;
}

json::array DecodeDecisionBlock(const model::DecisionBlock& block) {
  // Blocks written before 0012 are text; later ones LZ4 blocks compressed by cmdb.
  json::value decisions = model::ParseStoredJson(
      block.text ? *block.text
                 : Lz4Decompress(block.compressed, static_cast<std::size_t>(block.bytes)));
  return std::move(decisions.as_array());
}

model::DecisionPage PageDecisions(
    const std::function<std::vector<model::DecisionBlock>(std::int64_t after_seq)>& next_blocks,
    const std::optional<std::string>& outcome, std::int64_t after, int limit) {
  model::DecisionPage page;
  std::int64_t from = after;
  auto full = [&] { return static_cast<int>(page.items.size()) > limit; };
  while (!full()) {
    const std::vector<model::DecisionBlock> blocks = next_blocks(from);
    if (blocks.empty()) break;
    for (const model::DecisionBlock& block : blocks) {
      if (full()) break;
      for (json::value& d : DecodeDecisionBlock(block)) {
        const json::object& o = d.as_object();
        if (o.at("seq").as_int64() <= after) continue;
        if (outcome && o.at("outcome").as_string() != *outcome) continue;
        page.items.push_back(std::move(d));
        if (full()) break;
      }
      from = block.last_seq;
    }
  }
  if (full()) {
    page.items.resize(static_cast<std::size_t>(limit));
    page.next_after = limit > 0 ? page.items.back().at("seq").as_int64() : after;
  }
  return page;
}

}  // namespace cmdb::discovery
