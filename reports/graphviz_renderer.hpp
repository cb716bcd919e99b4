#pragma once
// Renders an ImpactPicture with Graphviz (cgraph + gvc, in-process): SVG, PNG or DOT. The one
// translation unit that includes Graphviz. Graphviz is not thread-safe, so every render in the
// process is serialised by one lock; a caller waits at most `wait` for its turn and then gets
// Error{kUnavailable}, so a queue of renders cannot pin every worker thread. Thread-safe.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "reports/impact_picture.hpp"

namespace cmdb::reports {

enum class RenderFormat { kSvg, kPng, kDot };

class GraphvizRenderer {
 public:
  GraphvizRenderer() = default;
  ~GraphvizRenderer() = default;
  GraphvizRenderer(const GraphvizRenderer&) = delete;
  GraphvizRenderer& operator=(const GraphvizRenderer&) = delete;

  // The rendered bytes. Throws Error{kUnavailable} when the renderer stays busy for `wait`,
  // Error{kInternal} when Graphviz fails.
  std::string Render(const ImpactPicture& picture, RenderFormat format,
                     std::chrono::milliseconds wait = std::chrono::seconds{2});
};

// Makes `text` safe as a Graphviz label: backslashes doubled (labels are escString, where
// \N, \G, \n mean something), control characters and line breaks turned into spaces, bytes
// that are not well-formed UTF-8 (and U+FFFE, U+FFFF) turned into U+FFFD, byte order marks
// (U+FEFF) dropped, and "-", "." and "-." (which Graphviz writes unquoted, as if numbers, into
// DOT it cannot read back) followed by a zero-width space.
std::string EscapeLabel(std::string_view text);

}  // namespace cmdb::reports
