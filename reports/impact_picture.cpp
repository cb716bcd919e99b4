#include "reports/impact_picture.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace cmdb::reports {

ImpactPicture BuildImpactPicture(const graph::ImpactResult& impact,
                                 const graph::DependencyGraph& graph, model::CiId root,
                                 const PictureLimits& limits) {
  ImpactPicture picture;
  std::optional<graph::NodeView> root_node = graph.Find(root);
  picture.title = root_node ? "Impact of " + std::string(root_node->name) : "Impact";
  // The traversal tree: each CI's parent is the other end of the last relation on its path.
  std::unordered_map<model::CiId, model::CiId> parent;
  std::map<model::CiId, std::vector<std::size_t>> children;  // positions in impact.nodes
  std::set<model::CiId> has_children;
  for (std::size_t at = 0; at < impact.nodes.size(); ++at) {
    const graph::ImpactNode n = impact.nodes[at];
    if (n.parent < 0) continue;
    model::CiId p = impact.nodes[static_cast<std::size_t>(n.parent)].id;
    parent[n.id] = p;
    children[p].push_back(at);
    has_children.insert(p);
  }
  // Fold large fan-outs: keep services, CIs that lead further, and the first leaves.
  std::set<model::CiId> folded;
  std::map<std::pair<model::CiId, std::string>, std::size_t> folds;  // (parent, type) -> count
  for (auto& [p, kids] : children) {
    if (kids.size() <= limits.max_fanout) continue;
    std::size_t kept_leaves = 0;
    for (std::size_t kid : kids) {
      const graph::NodeView info = impact.nodes.View(kid);
      bool keep = info.type == "business_service" || has_children.contains(info.id);
      if (!keep && kept_leaves < limits.max_fanout / 2) {
        keep = true;
        ++kept_leaves;
      }
      if (!keep) {
        folded.insert(info.id);
        ++folds[{p, std::string(info.type)}];
      }
    }
  }
  std::set<model::CiId> kept;
  std::size_t beyond_cap = 0;
  for (std::size_t at = 0; at < impact.nodes.size(); ++at) {
    const graph::ImpactNode n = impact.nodes[at];
    if (folded.contains(n.id)) continue;
    bool parent_kept = n.parent < 0 || kept.contains(parent[n.id]);
    if (!parent_kept || kept.size() + folds.size() >= limits.max_nodes) {
      ++beyond_cap;
      continue;
    }
    kept.insert(n.id);
    const graph::NodeView info = impact.nodes.View(at);
    PictureNode node;
    node.key = "ci" + std::to_string(n.id);
    node.id = n.id;
    node.name = info.name;
    node.type = info.type;
    node.status = info.status;
    node.distance = n.distance;
    node.root = n.id == root;
    node.service = info.type == "business_service";
    picture.nodes.push_back(std::move(node));
  }
  for (const auto& e : impact.edges) {
    if (kept.contains(e.from) && kept.contains(e.to)) {
      picture.edges.push_back(
          {"ci" + std::to_string(e.from), "ci" + std::to_string(e.to), std::string(e.type)});
    }
  }
  std::size_t summary = 0;
  for (const auto& [key, count] : folds) {
    if (!kept.contains(key.first)) {
      beyond_cap += count;
      continue;
    }
    PictureNode node;
    node.key = "more" + std::to_string(++summary);
    node.name = "+" + std::to_string(count) + " " + key.second;
    node.type = key.second;
    node.folded = count;
    picture.edges.push_back({"ci" + std::to_string(key.first), node.key, "..."});
    picture.nodes.push_back(std::move(node));
  }
  if (beyond_cap > 0) {
    PictureNode node;
    node.key = "more" + std::to_string(++summary);
    node.name = "+" + std::to_string(beyond_cap) + " more CIs";
    node.folded = beyond_cap;
    picture.edges.push_back({"ci" + std::to_string(root), node.key, "..."});
    picture.nodes.push_back(std::move(node));
  }
  for (const auto& a : impact.absorbed) {
    std::optional<graph::NodeView> info = graph.Find(a.id);
    PictureNode node;
    node.key = "ci" + std::to_string(a.id);
    node.id = a.id;
    node.name = std::string(info->name) + " (" + std::to_string(a.healthy) + "/" +
                std::to_string(a.providers) + " up, needs " + std::to_string(a.min_healthy) + ")";
    node.type = info->type;
    node.status = info->status;
    node.absorbed = true;
    picture.nodes.push_back(std::move(node));
  }
  return picture;
}

}  // namespace cmdb::reports
