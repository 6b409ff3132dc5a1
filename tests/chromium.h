// Headless Chromium (Debian's `chromium`) for the browser tests: opens a URL with a profile of
// its own per launch (a second Chromium on a profile in use hands its URL to the first and
// exits), and returns the DOM after the load event, or writes a screenshot, with every console
// line (console messages and uncaught exceptions are logged as "...:CONSOLE...").
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace eventmart::test {

struct BrowserRun {
  std::string dom;
  std::vector<std::string> console;
  int status = -1;
};

inline BrowserRun run_chromium(const std::string& url, const std::filesystem::path& work_dir,
                               const std::string& window_size,
                               const std::filesystem::path& screenshot = {}) {
  namespace fs = std::filesystem;
  static int launches = 0;
  const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(++launches);
  fs::create_directories(work_dir);
  const fs::path profile = work_dir / ("chromium-profile-" + tag);
  const fs::path err = work_dir / ("chromium-stderr-" + tag + ".txt");
  std::string cmd =
      "timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run "
      "--disable-extensions --enable-logging=stderr --v=0 --user-data-dir='" +
      profile.string() + "' --window-size=" + window_size + " ";
  cmd += screenshot.empty() ? "--dump-dom " : "--screenshot='" + screenshot.string() + "' ";
  cmd += "'" + url + "' 2>'" + err.string() + "'";
  BrowserRun run;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[65536];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) run.dom.append(buf, n);
  run.status = ::pclose(pipe);
  std::ifstream in(err);
  for (std::string line; std::getline(in, line);) {
    if (line.find(":CONSOLE") != std::string::npos || line.find("Uncaught") != std::string::npos) {
      run.console.push_back(line);
    }
  }
  std::error_code ec;
  fs::remove_all(profile, ec);
  fs::remove(err, ec);
  return run;
}

}  // namespace eventmart::test
