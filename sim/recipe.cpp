#include "sim/recipe.h"

#include <charconv>

#include "core/event_id.h"

namespace eventmart::sim {
namespace {

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t value = 0;
  if (text.empty() || text.size() > 20 || text.front() < '0' || text.front() > '9') {
    return std::nullopt;
  }
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::string child_text(const Splitpoint& split) {
  return std::to_string(split.child) + (split.storm ? "+" : "");
}

std::string to_string(const Recipe& recipe) {
  std::string text = std::to_string(recipe.seed);
  for (const Splitpoint& s : recipe.splits) {
    text += "/" + std::to_string(s.step) + ":" + child_text(s);
  }
  return text;
}

std::optional<std::string> check_splits(const std::vector<Splitpoint>& splits) {
  if (splits.size() > kMaxSplits) {
    return "more than " + std::to_string(kMaxSplits) + " splitpoints";
  }
  std::uint64_t previous = 0;
  for (const Splitpoint& s : splits) {
    if (s.step <= previous) {
      return "splitpoint steps must increase and be at least 1 (step " + std::to_string(s.step) +
             " after " + std::to_string(previous) + ")";
    }
    if (s.child < 1 || s.child > kMaxChild) {
      return "a child number is 1.." + std::to_string(kMaxChild) + " (got " +
             std::to_string(s.child) + ")";
    }
    previous = s.step;
  }
  return std::nullopt;
}

Result<Recipe> parse_recipe(std::string_view text) {
  using R = Result<Recipe>;
  const std::string shown =
      text.size() > 60 ? std::string(text.substr(0, 60)) + "..." : std::string(text);
  if (text.size() > kMaxRecipeBytes) {
    return R::error("a recipe is at most " + std::to_string(kMaxRecipeBytes) + " bytes (got " +
                    std::to_string(text.size()) + ")");
  }
  const auto usage = [&](const std::string& why) {
    return R::error("recipe '" + shown + "': " + why +
                    " (expected SEED or SEED/STEP:CHILD/..., all decimal, a storm child CHILD+)");
  };
  Recipe recipe;
  std::size_t slash = text.find('/');
  const auto seed = number(text.substr(0, slash));
  if (!seed) return usage("the seed is not a number 0..2^64-1");
  recipe.seed = *seed;
  while (slash != std::string_view::npos) {
    const std::size_t start = slash + 1;
    slash = text.find('/', start);
    const std::string_view part = text.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    const std::size_t colon = part.find(':');
    if (colon == std::string_view::npos)
      return usage("'" + std::string(part) + "' is not STEP:CHILD");
    std::string_view child_text = part.substr(colon + 1);
    const bool storm = !child_text.empty() && child_text.back() == '+';
    if (storm) child_text.remove_suffix(1);
    const auto step = number(part.substr(0, colon));
    const auto child = number(child_text);
    if (!step || !child || *child > kMaxChild) {
      return usage("'" + std::string(part) + "' is not STEP:CHILD with numbers");
    }
    recipe.splits.push_back(Splitpoint{*step, static_cast<std::uint32_t>(*child), storm});
    if (recipe.splits.size() > kMaxSplits) break;
  }
  if (auto why = check_splits(recipe.splits)) return usage(*why);
  return R::ok(std::move(recipe));
}

std::uint64_t reseeded(std::uint64_t seed, const Splitpoint& split) {
  // A storm child's streams are its own too ("3+" is not "3" with a storm on top).
  return stable_hash("split/" + std::to_string(split.step) + "/" + child_text(split), seed);
}

}  // namespace eventmart::sim
