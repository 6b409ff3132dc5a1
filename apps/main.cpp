// The shipped `eventmart` binary.
#include "apps/commands.h"

int main(int argc, char** argv) {
  return eventmart::apps::run_command_line(argc, argv);
}
