#include "runs/results.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "core/event_id.h"
#include "core/json.h"
#include "sim/scenario_file.h"

namespace eventmart::runs {
namespace {

// What ran, as a scenario file holds it (the seed in it is the range's first).
std::string run_text(const RunPlan& plan, std::uint64_t first) {
  sim::ScenarioFile file;
  file.options = plan.base;
  file.options.seed = first;
  file.swarm = plan.swarm;
  return sim::to_json(file);
}

json::Document marks_object(const MarkCounts& counts) {
  json::Document marks = json::Document::object();
  for (const MarkInfo& m : all_marks()) {
    const std::uint64_t n = counts[static_cast<std::size_t>(m.mark)];
    if (n > 0) marks[std::string(m.name)] = n;
  }
  return marks;
}

json::Document names_array(const std::vector<std::string>& names) {
  json::Document array = json::Document::array();
  for (const std::string& n : names) array.push_back(n);
  return array;
}

}  // namespace

ResultsWriter::ResultsWriter(const std::string& path) : path_(path) {
  if (path == "-") {
    out_ = stdout;
    return;
  }
  out_ = std::fopen(path.c_str(), "w");
  if (out_ == nullptr) {
    throw std::runtime_error("--jsonl: cannot write '" + path + "': " + std::strerror(errno));
  }
  owned_ = true;
}

ResultsWriter::~ResultsWriter() {
  if (owned_ && out_ != nullptr) std::fclose(out_);
}

void ResultsWriter::line(const std::string& text) {
  if (!error_.empty()) return;
  // One write per line, flushed: a shard killed between two lines leaves whole lines.
  const std::string whole = text + "\n";
  if (std::fwrite(whole.data(), 1, whole.size(), out_) != whole.size() || std::fflush(out_) != 0) {
    error_ = "--jsonl: writing '" + path_ + "' failed: " + std::strerror(errno);
  }
}

std::string ResultsWriter::finish() {
  if (owned_ && out_ != nullptr) {
    if (std::fclose(out_) != 0 && error_.empty()) {
      error_ = "--jsonl: closing '" + path_ + "' failed: " + std::strerror(errno);
    }
    out_ = nullptr;
  }
  return error_;
}

void ResultsWriter::seeds_header(const RunPlan& plan, std::uint64_t first, std::uint64_t last,
                                 Shard shard, unsigned jobs) {
  json::Document h;
  h["kind"] = "header";
  h["format"] = kResultsFormat;
  h["command"] = "sim";
  h["first_seed"] = first;
  h["last_seed"] = last;
  h["shard"] = shard.index;
  h["shards"] = shard.count;
  h["seeds"] = shard_size(first, last, shard);
  h["jobs"] = jobs;
  h["check_determinism"] = plan.check_determinism;
  h["scenario_file"] = plan.scenario_file;
  h["run"] = run_text(plan, first);
  line(json::dump(h));
}

void ResultsWriter::seed(const SeedRecord& r) {
  json::Document s;
  s["kind"] = "seed";
  s["seed"] = r.seed;
  s["failures"] = names_array(r.failures);
  if (!r.assertion.empty()) s["assertion"] = r.assertion;
  if (!r.determinism_report.empty()) s["determinism"] = r.determinism_report;
  if (!r.could_not_go_on.empty()) s["could_not_go_on"] = r.could_not_go_on;
  s["qos0"] = r.qos0;
  s["lost_departures"] = r.lost_departures;
  s["dead_letters"] = r.dead_letters;
  s["trace_hash"] = to_hex64(r.trace_hash);
  s["marks"] = marks_object(r.marks);
  line(json::dump(s));
}

void ResultsWriter::seeds_summary(const SeedSummary& summary, double wall_seconds) {
  json::Document s;
  s["kind"] = "summary";
  s["seeds"] = summary.seeds;
  s["failing"] = summary.failing;
  s["wall_seconds"] = wall_seconds;
  line(json::dump(s));
}

void ResultsWriter::explore_header(const ExploreOptions& o) {
  json::Document h;
  h["kind"] = "header";
  h["format"] = kResultsFormat;
  h["command"] = "explore";
  h["first_seed"] = o.first_root;
  h["last_seed"] = o.last_root;
  h["shard"] = o.shard.index;
  h["shards"] = o.shard.count;
  h["jobs"] = o.jobs;
  h["budget_timelines"] = o.budget_timelines;
  h["budget_cpu_seconds"] = o.budget_cpu_seconds;
  h["children"] = o.children;
  h["depth"] = o.max_depth;
  h["splits_per_mark"] = o.splits_per_mark;
  h["scenario_file"] = o.plan.scenario_file;
  h["run"] = run_text(o.plan, o.first_root);
  line(json::dump(h));
}

void ResultsWriter::explore_result(const ExploreSummary& s) {
  for (const ExploredFailure& f : s.failures) {
    json::Document l;
    l["kind"] = "failure";
    l["recipe"] = sim::to_string(f.recipe);
    l["failures"] = names_array(f.failures);
    if (!f.assertion.empty()) l["assertion"] = f.assertion;
    l["trace_hash"] = to_hex64(f.trace_hash);
    l["cpu_seconds"] = f.cpu_seconds;
    line(json::dump(l));
  }
  json::Document l;
  l["kind"] = "summary";
  l["roots"] = s.roots;
  l["timelines"] = s.timelines;
  l["splitpoints"] = s.splitpoints;
  l["failing"] = s.failing;
  l["failure_lines"] = s.failures.size();
  l["max_depth"] = s.max_depth;
  l["cpu_seconds"] = s.cpu_seconds;
  l["wall_seconds"] = s.wall_seconds;
  l["cpu_to_first_failure"] = s.cpu_to_first_failure;
  json::Document by = json::Document::object();
  for (const auto& [name, n] : s.failed_by) by[name] = n;
  l["failed_by"] = by;
  l["marks"] = marks_object(s.mark_timelines);
  line(json::dump(l));
}

// ---- merge ----

namespace {

struct Refused {
  std::string why;
};

const json::Value& member(const json::Value& object, std::string_view key) {
  const json::Value* v = object.find(key);
  if (v == nullptr) throw Refused{"no \"" + std::string(key) + "\""};
  return *v;
}

std::uint64_t u64(const json::Value& object, std::string_view key) {
  const json::Value& v = member(object, key);
  std::uint64_t n = 0;
  const char* end = v.text.data() + v.text.size();
  const auto [at, ec] = std::from_chars(v.text.data(), end, n);
  if (v.kind != json::Value::Kind::kNumber || ec != std::errc{} || at != end) {
    throw Refused{"\"" + std::string(key) + "\" is not a whole number 0..2^64-1"};
  }
  return n;
}

double real(const json::Value& object, std::string_view key) {
  const json::Value& v = member(object, key);
  errno = 0;
  char* end = nullptr;
  const double x = v.kind == json::Value::Kind::kNumber ? std::strtod(v.text.c_str(), &end) : 0;
  if (v.kind != json::Value::Kind::kNumber || errno == ERANGE ||
      end != v.text.c_str() + v.text.size()) {
    throw Refused{"\"" + std::string(key) + "\" is not a number a double holds"};
  }
  return x;
}

std::string text(const json::Value& object, std::string_view key) {
  const json::Value& v = member(object, key);
  if (v.kind != json::Value::Kind::kString)
    throw Refused{"\"" + std::string(key) + "\" is not a string"};
  return v.text;
}

std::string optional_text(const json::Value& object, std::string_view key) {
  return object.find(key) != nullptr ? text(object, key) : std::string();
}

bool boolean(const json::Value& object, std::string_view key) {
  const json::Value& v = member(object, key);
  if (v.kind != json::Value::Kind::kBool)
    throw Refused{"\"" + std::string(key) + "\" is not true or false"};
  return v.boolean;
}

std::vector<std::string> names(const json::Value& object, std::string_view key) {
  const json::Value& v = member(object, key);
  if (v.kind != json::Value::Kind::kArray)
    throw Refused{"\"" + std::string(key) + "\" is not an array"};
  std::vector<std::string> out;
  for (const json::Value& item : v.items) {
    if (item.kind != json::Value::Kind::kString)
      throw Refused{"\"" + std::string(key) + "\" holds a non-string"};
    out.push_back(item.text);
  }
  return out;
}

MarkCounts marks(const json::Value& object) {
  const json::Value& v = member(object, "marks");
  if (v.kind != json::Value::Kind::kObject) throw Refused{"\"marks\" is not an object"};
  MarkCounts counts{};
  for (std::size_t i = 0; i < v.keys.size(); ++i) {
    const MarkInfo* found = nullptr;
    for (const MarkInfo& m : all_marks()) {
      if (m.name == v.keys[i]) found = &m;
    }
    if (found == nullptr) throw Refused{"no coverage mark named '" + v.keys[i] + "' in this build"};
    counts[static_cast<std::size_t>(found->mark)] = u64(v, v.keys[i]);
  }
  return counts;
}

std::uint64_t hex64(const json::Value& object, std::string_view key) {
  const std::string t = text(object, key);
  std::uint64_t n = 0;
  const char* end = t.data() + t.size();
  const auto [at, ec] = std::from_chars(t.data(), end, n, 16);
  if (t.empty() || ec != std::errc{} || at != end) {
    throw Refused{"\"" + std::string(key) + "\" is not a hexadecimal hash"};
  }
  return n;
}

// Reads a file a line at a time (a merge of a million seeds holds one line, not the file).
class Lines {
 public:
  Lines(std::string name, std::istream& in) : name_(std::move(name)), in_(in) {}

  // The next line as a JSON object and its "kind", or nullopt at the end of the file.
  std::optional<json::Value> next(std::string& kind) {
    std::string line;
    if (!std::getline(in_, line)) {
      if (in_.bad()) throw Refused{"reading it failed"};
      return std::nullopt;
    }
    ++number_;
    const std::string where = "line " + std::to_string(number_) + ": ";
    if (in_.eof()) {
      throw Refused{where +
                    "does not end with a newline: the file is truncated (the shard "
                    "stopped while writing it)"};
    }
    auto parsed = json::parse(line);
    if (!parsed) throw Refused{where + parsed.error()};
    json::Value v = std::move(parsed).value();
    if (v.kind != json::Value::Kind::kObject) throw Refused{where + "not a JSON object"};
    for (std::size_t i = 0; i < v.keys.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (v.keys[i] == v.keys[j]) throw Refused{where + "\"" + v.keys[i] + "\" twice"};
      }
    }
    const json::Value* k = v.find("kind");
    if (k == nullptr || k->kind != json::Value::Kind::kString) {
      throw Refused{where + "no \"kind\""};
    }
    kind = k->text;
    return v;
  }

  std::uint64_t number() const { return number_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::istream& in_;
  std::uint64_t number_ = 0;
};

// One file: its header read, the rest still to read.
struct ShardFile {
  std::unique_ptr<Lines> lines;
  json::Value header;
  std::string command;
  Shard shard;
};

ShardFile open_shard(const std::string& name, std::istream& in) {
  ShardFile f;
  f.lines = std::make_unique<Lines>(name, in);
  std::string kind;
  std::optional<json::Value> first;
  try {
    first = f.lines->next(kind);
  } catch (const Refused&) {
    first.reset();
    kind.clear();
  }
  if (!first && f.lines->number() == 0) {
    throw Refused{"empty: not a results file of eventmart (--jsonl)"};
  }
  const json::Value* format = first ? first->find("format") : nullptr;
  if (!first || kind != "header" || format == nullptr || format->text != kResultsFormat) {
    throw Refused{"not a results file of eventmart (--jsonl): its first line is not a \"" +
                  std::string(kResultsFormat) + "\" header"};
  }
  f.header = std::move(*first);
  f.command = text(f.header, "command");
  if (f.command != "sim" && f.command != "explore") {
    throw Refused{"unknown command '" + f.command + "'"};
  }
  f.shard = Shard{u64(f.header, "shard"), u64(f.header, "shards")};
  if (f.shard.count < 1 || f.shard.index < 1 || f.shard.index > f.shard.count) {
    throw Refused{"shard " + std::to_string(f.shard.index) + "/" + std::to_string(f.shard.count) +
                  " is not K/N with 1 <= K <= N"};
  }
  return f;
}

// The summary line, once the result lines before it went to `each`; nothing may follow it.
json::Value read_body(Lines& lines, const char* result_kind,
                      const std::function<void(const json::Value&)>& each, std::uint64_t& results) {
  std::string kind;
  while (auto line = lines.next(kind)) {
    if (kind == "summary") {
      json::Value summary = std::move(*line);
      if (lines.next(kind)) {
        throw Refused{"line " + std::to_string(lines.number()) + ": a line after the summary"};
      }
      return summary;
    }
    if (kind != result_kind) {
      throw Refused{"line " + std::to_string(lines.number()) + ": a \"" + kind + "\" line in a " +
                    (std::string(result_kind) == "seed" ? "sim" : "explore") + " file"};
    }
    ++results;
    try {
      each(*line);
    } catch (const Refused& r) {
      throw Refused{"line " + std::to_string(lines.number()) + ": " + r.why};
    }
  }
  throw Refused{"truncated: no summary line after " + std::to_string(results) +
                " result lines (the shard did not finish)"};
}

// The header without what differs between shards of one run.
std::string run_key(const json::Value& header) {
  std::string key;
  for (std::size_t i = 0; i < header.keys.size(); ++i) {
    const std::string& k = header.keys[i];
    if (k == "shard" || k == "shards" || k == "jobs" || k == "seeds") continue;
    key += k + "=" + header.items[i].text + (header.items[i].boolean ? "t" : "f") + ";";
  }
  return key;
}

RunPlan plan_of(const json::Value& header) {
  auto file = sim::parse_scenario_file(text(header, "run"));
  if (!file) throw Refused{"\"run\": " + file.error()};
  RunPlan plan;
  plan.base = file.value().options;
  plan.swarm = file.value().swarm;
  plan.scenario_file = text(header, "scenario_file");
  plan.check_determinism =
      header.find("check_determinism") != nullptr && boolean(header, "check_determinism");
  return plan;
}

std::string shard_name(Shard s) {
  return std::to_string(s.index) + "/" + std::to_string(s.count);
}

MergedSeeds merge_seeds(std::vector<ShardFile>& files) {
  MergedSeeds m;
  const json::Value& h = files.front().header;
  m.plan = plan_of(h);
  m.first = u64(h, "first_seed");
  m.last = u64(h, "last_seed");
  if (m.last < m.first || m.last - m.first >= kMaxSeedsPerRun) throw Refused{"a bad seed range"};
  m.shards = files.front().shard.count;
  SummaryBuilder builder;
  for (ShardFile& f : files) {
    try {
      const std::uint64_t expected = shard_size(m.first, m.last, f.shard);
      std::vector<bool> seen(expected, false);  // by the seed's place in its shard
      std::uint64_t lines = 0, failing = 0;
      const json::Value summary = read_body(
          *f.lines, "seed",
          [&](const json::Value& l) {
            SeedRecord r;
            r.seed = u64(l, "seed");
            if (!in_shard(m.first, r.seed, f.shard) || r.seed > m.last) {
              throw Refused{"seed " + std::to_string(r.seed) + " is not in shard " +
                            shard_name(f.shard) + " of seeds " + std::to_string(m.first) + ".." +
                            std::to_string(m.last)};
            }
            const std::uint64_t place = (r.seed - m.first) / f.shard.count;
            if (seen[place]) throw Refused{"seed " + std::to_string(r.seed) + " twice"};
            seen[place] = true;
            r.failures = names(l, "failures");
            r.assertion = optional_text(l, "assertion");
            r.determinism_report = optional_text(l, "determinism");
            r.could_not_go_on = optional_text(l, "could_not_go_on");
            r.qos0 = boolean(l, "qos0");
            r.lost_departures = u64(l, "lost_departures");
            r.dead_letters = u64(l, "dead_letters");
            r.trace_hash = hex64(l, "trace_hash");
            r.marks = marks(l);
            failing += r.passed() ? 0 : 1;
            builder.add(std::move(r));
          },
          lines);
      const std::uint64_t said = u64(summary, "seeds");
      if (said != expected || lines != said) {
        throw Refused{"truncated or padded: shard " + shard_name(f.shard) + " of seeds " +
                      std::to_string(m.first) + ".." + std::to_string(m.last) + " holds " +
                      std::to_string(expected) + " seeds; its summary says " +
                      std::to_string(said) + " and it has " + std::to_string(lines) +
                      " seed lines"};
      }
      if (failing != u64(summary, "failing")) {
        throw Refused{"its summary says " + std::to_string(u64(summary, "failing")) +
                      " failing, its lines " + std::to_string(failing)};
      }
      m.jobs += static_cast<unsigned>(u64(f.header, "jobs"));
      m.wall_seconds = std::max(m.wall_seconds, real(summary, "wall_seconds"));
    } catch (const Refused& r) {
      throw Refused{f.lines->name() + ": " + r.why};
    }
  }
  m.summary = std::move(builder).finish();
  return m;
}

MergedExploration merge_explorations(std::vector<ShardFile>& files) {
  MergedExploration m;
  const json::Value& h = files.front().header;
  ExploreOptions& o = m.options;
  o.plan = plan_of(h);
  o.first_root = u64(h, "first_seed");
  o.last_root = u64(h, "last_seed");
  o.budget_timelines = u64(h, "budget_timelines");
  o.budget_cpu_seconds = real(h, "budget_cpu_seconds");
  o.children = static_cast<unsigned>(u64(h, "children"));
  o.max_depth = static_cast<unsigned>(u64(h, "depth"));
  o.splits_per_mark = static_cast<unsigned>(u64(h, "splits_per_mark"));
  o.shard = Shard{1, 1};
  o.jobs = 0;
  m.shards = files.front().shard.count;
  ExploreSummary& s = m.summary;
  for (ShardFile& f : files) {
    try {
      std::uint64_t lines = 0;
      const json::Value t = read_body(
          *f.lines, "failure",
          [&](const json::Value& l) {
            ExploredFailure e;
            auto recipe = sim::parse_recipe(text(l, "recipe"));
            if (!recipe) throw Refused{"recipe: " + recipe.error()};
            e.recipe = recipe.value();
            if (!in_shard(o.first_root, e.recipe.seed, f.shard) || e.recipe.seed > o.last_root) {
              throw Refused{"timeline " + sim::to_string(e.recipe) + " has a root outside shard " +
                            shard_name(f.shard)};
            }
            e.failures = names(l, "failures");
            e.assertion = optional_text(l, "assertion");
            e.trace_hash = hex64(l, "trace_hash");
            e.cpu_seconds = real(l, "cpu_seconds");
            if (s.failures.size() < ExploreSummary::kKept) s.failures.push_back(std::move(e));
          },
          lines);
      if (lines != u64(t, "failure_lines")) {
        throw Refused{"truncated or padded: its summary says " +
                      std::to_string(u64(t, "failure_lines")) + " failure lines, it has " +
                      std::to_string(lines)};
      }
      s.roots += u64(t, "roots");
      s.timelines += u64(t, "timelines");
      s.splitpoints += u64(t, "splitpoints");
      s.failing += u64(t, "failing");
      s.max_depth = std::max(s.max_depth, static_cast<unsigned>(u64(t, "max_depth")));
      s.cpu_seconds += real(t, "cpu_seconds");
      s.wall_seconds = std::max(s.wall_seconds, real(t, "wall_seconds"));
      const double first = real(t, "cpu_to_first_failure");
      if (first >= 0 && (s.cpu_to_first_failure < 0 || first < s.cpu_to_first_failure)) {
        s.cpu_to_first_failure = first;
      }
      const json::Value& by = member(t, "failed_by");
      if (by.kind != json::Value::Kind::kObject) throw Refused{"\"failed_by\" is not an object"};
      for (const std::string& k : by.keys) s.failed_by[k] += u64(by, k);
      const MarkCounts reached = marks(t);
      for (std::size_t i = 0; i < kMarkCount; ++i) s.mark_timelines[i] += reached[i];
      o.jobs += static_cast<unsigned>(u64(f.header, "jobs"));
    } catch (const Refused& r) {
      throw Refused{f.lines->name() + ": " + r.why};
    }
  }
  return m;
}

}  // namespace

Result<Merged> merge_results(const std::vector<ShardInput>& inputs) {
  try {
    if (inputs.empty()) throw Refused{"no files to merge"};
    std::vector<ShardFile> files;
    for (const ShardInput& input : inputs) {
      try {
        files.push_back(open_shard(input.name, *input.in));
      } catch (const Refused& r) {
        throw Refused{input.name + ": " + r.why};
      }
    }
    const std::string key = run_key(files.front().header);
    const std::string& first = files.front().lines->name();
    const Shard split = files.front().shard;
    std::map<std::uint64_t, std::string> by_index;
    for (const ShardFile& f : files) {
      const std::string& name = f.lines->name();
      if (run_key(f.header) != key) {
        throw Refused{name + " and " + first +
                      " are shards of different runs (their commands, options or seed ranges "
                      "differ)"};
      }
      if (f.shard.count != split.count) {
        throw Refused{name + " is shard " + shard_name(f.shard) + " and " + first + " is shard " +
                      shard_name(split) + ": shards of different splits overlap"};
      }
      if (auto [it, added] = by_index.emplace(f.shard.index, name); !added) {
        throw Refused{"shard " + shard_name(f.shard) + " twice: " + it->second + " and " + name};
      }
    }
    std::string missing;
    for (std::uint64_t k = 1; k <= split.count && missing.size() < 200; ++k) {
      if (!by_index.count(k)) missing += (missing.empty() ? "" : ", ") + std::to_string(k);
    }
    if (!missing.empty()) {
      throw Refused{"shard(s) " + missing + " of " + std::to_string(split.count) +
                    " missing: the merge would not be the whole run"};
    }
    const bool seeds = files.front().command == "sim";
    std::sort(files.begin(), files.end(),
              [](const ShardFile& a, const ShardFile& b) { return a.shard.index < b.shard.index; });
    if (seeds) return Result<Merged>::ok(merge_seeds(files));
    return Result<Merged>::ok(merge_explorations(files));
  } catch (const Refused& r) {
    return Result<Merged>::error(r.why);
  } catch (const std::bad_alloc&) {
    return Result<Merged>::error("out of memory");
  }
}

Result<Merged> merge_texts(const std::vector<std::pair<std::string, std::string>>& texts) {
  std::vector<std::istringstream> streams;
  streams.reserve(texts.size());
  std::vector<ShardInput> inputs;
  for (const auto& [name, text] : texts) {
    streams.emplace_back(text);
    inputs.push_back(ShardInput{name, &streams.back()});
  }
  return merge_results(inputs);
}

}  // namespace eventmart::runs
