#pragma once
// Turns an impact result into a picture small enough to lay out: large fan-outs are folded
// into summary nodes ("+240 vm"), and past a node cap the farthest CIs fold into one. Plain
// values, no Graphviz; thread-safe.

#include <cstddef>
#include <string>
#include <vector>

#include "graph/dependency_graph.hpp"

namespace cmdb::reports {

struct PictureNode {
  std::string key;     // unique within the picture: "ci12", "more3"
  model::CiId id = 0;  // 0 for a summary node
  std::string name;
  std::string type;
  std::string status;
  int distance = 0;
  bool root = false;
  bool service = false;
  bool absorbed = false;   // kept up by redundancy
  bool drifted = false;    // hook: set by discovery (#4)
  bool incident = false;   // hook: set by incidents (#5)
  std::size_t folded = 0;  // summary nodes: how many CIs it stands for
};

struct PictureEdge {
  std::string from;  // node keys
  std::string to;
  std::string label;
};

struct ImpactPicture {
  std::string title;
  // When set, every CI node links there ("{id}" replaced by the CI's id): the web UI's
  // clickable graph. The API's pictures have no links.
  std::string node_link;
  std::vector<PictureNode> nodes;
  std::vector<PictureEdge> edges;
};

struct PictureLimits {
  std::size_t max_fanout = 20;  // children drawn per CI before the rest fold
  std::size_t max_nodes = 300;  // dot lays out ~300 nodes in well under a second here
};

ImpactPicture BuildImpactPicture(const graph::ImpactResult& impact,
                                 const graph::DependencyGraph& graph, model::CiId root,
                                 const PictureLimits& limits = {});

}  // namespace cmdb::reports
