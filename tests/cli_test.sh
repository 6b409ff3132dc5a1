#!/usr/bin/env bash
# The command-line contract of `eventmart sim`, `explore`, `serve`, `scan`, `load` and `chaos`: exit codes, --help,
# --json keys, replay, options from EVENTMART_* variables and config files.
set -u
bin="$1"
failures=0
check() {  # check NAME EXPECTED_STATUS COMMAND...
  local name="$1" expected="$2"
  shift 2
  "$@" >/tmp/eventmart-cli.$$.out 2>/tmp/eventmart-cli.$$.err
  local status=$?
  if [ "$status" -ne "$expected" ]; then
    echo "FAIL $name: exit $status, expected $expected"
    sed 's/^/  stderr: /' /tmp/eventmart-cli.$$.err | head -5
    failures=$((failures + 1))
  else
    echo "ok   $name"
  fi
}
contains() {  # contains NAME FILE TEXT
  if grep -q -- "$3" "$2"; then echo "ok   $1"; else echo "FAIL $1: '$3' not in output"; failures=$((failures + 1)); fi
}

check "sim --help exits 0" 0 "$bin" sim --help
for opt in --seed --customers --products --hours --json; do
  contains "help explains $opt" /tmp/eventmart-cli.$$.out "$opt"
done

check "negative customer count is bad usage" 2 "$bin" sim --customers -5
contains "bad usage names the option" /tmp/eventmart-cli.$$.err "customers"
check "non-numeric seed is bad usage" 2 "$bin" sim --seed abc
check "negative seed is bad usage (no wrap-around)" 2 "$bin" sim --seed -1
check "zero hours is bad usage" 2 "$bin" sim --hours 0
check "unknown option is bad usage" 2 "$bin" sim --frobnicate
check "unknown command is bad usage" 2 "$bin" frobnicate

check "a clean day exits 0" 0 "$bin" sim --seed 7 --customers 200 --hours 2 --json
for key in '"seed":7' '"customers":200' '"departures":' '"payments":' '"revenue_cents":' \
           '"restocks_requested":' '"restocks_delivered":' '"deliveries":' '"virtual_seconds":' \
           '"wall_seconds":' '"trace_hash":"' '"invariants":{' \
           '"stock_never_negative":{"held":true,"violations":0' \
           '"payment_equals_basket":{"held":true' '"restock_once_per_crossing":{"held":true' \
           '"departure_paid_once":{"held":true' '"inventory_matches_shelves":{"held":true'; do
  contains "json has $key" /tmp/eventmart-cli.$$.out "$key"
done
hash1=$(grep -o '"trace_hash":"[0-9a-f]*"' /tmp/eventmart-cli.$$.out)
"$bin" sim --seed 7 --customers 200 --hours 2 --json >/tmp/eventmart-cli.$$.out2
hash2=$(grep -o '"trace_hash":"[0-9a-f]*"' /tmp/eventmart-cli.$$.out2)
if [ -n "$hash1" ] && [ "$hash1" = "$hash2" ]; then echo "ok   same seed, same trace hash across processes"; else echo "FAIL trace hash differs across processes: $hash1 vs $hash2"; failures=$((failures + 1)); fi

check "a faulty run exits 0 with the real services" 0 "$bin" sim --seed 5 --customers 200 --hours 2 --drop 0.2 --dup 0.2 --reorder 0.2 --crash 0.02 --json
for key in '"faults":{"dropped":' '"crashes":' '"fault_options":{"qos":1' '"redelivered_after_loss":'; do
  contains "faulty json has $key" /tmp/eventmart-cli.$$.out "$key"
done

h1=$("$bin" sim --seed 11 --customers 200 --hours 2 --faults swarm --json | grep -o '"trace_hash":"[0-9a-f]*"')
h2=$("$bin" sim --seed 11 --customers 200 --hours 2 --faults swarm --json | grep -o '"trace_hash":"[0-9a-f]*"')

if [ -n "$h1" ] && [ "$h1" = "$h2" ]; then echo "ok   a swarm seed replays with the same trace hash across processes"; else echo "FAIL swarm replay differs: $h1 vs $h2"; failures=$((failures + 1)); fi

check "a bug is caught: exit 1" 1 "$bin" sim --bug float-money --customers 100 --hours 1
contains "the failure names the invariant and the replay" /tmp/eventmart-cli.$$.err "payment_equals_basket violated (seed 1); replay with: eventmart sim --seed 1"
contains "the replay names the bug" /tmp/eventmart-cli.$$.err "--bug float-money"
check "--bug list exits 0" 0 "$bin" sim --bug list
for b in no-dedup ack-before-commit restock-every-event no-outbox float-money; do
  contains "--bug list names $b" /tmp/eventmart-cli.$$.out "$b"
done
check "an unknown bug is bad usage" 2 "$bin" sim --bug nope
check "--qos 2 is bad usage" 2 "$bin" sim --qos 2
check "--drop above 1 is bad usage" 2 "$bin" sim --drop 1.5
check "--faults must be none or swarm" 2 "$bin" sim --faults lots
check "--trace with --seeds is bad usage" 2 "$bin" sim --seeds 3 --trace /tmp/eventmart-cli.$$.jsonl

check "many seeds, all passing" 0 "$bin" sim --seeds 4 --customers 100 --hours 1 --faults swarm --check-determinism
contains "the summary counts seeds" /tmp/eventmart-cli.$$.out "4 seeds (1..4)"
contains "the summary counts failing seeds" /tmp/eventmart-cli.$$.out "0 failing"
check "a failing seed range exits 1 and lists replays" 1 "$bin" sim --seeds 2..3 --customers 100 --hours 1 --bug float-money
contains "each failing seed has its replay command" /tmp/eventmart-cli.$$.out "eventmart sim --seed 3 --customers 100"

check "--trace writes JSON Lines" 0 "$bin" sim --seed 2 --customers 20 --hours 1 --drop 0.3 --trace /tmp/eventmart-cli.$$.jsonl
contains "trace has deliveries" /tmp/eventmart-cli.$$.jsonl '"kind":"delivered"'
contains "trace has faults" /tmp/eventmart-cli.$$.jsonl '"kind":"dropped"'
contains "trace entries carry virtual time" /tmp/eventmart-cli.$$.jsonl '"t_us":1795680'

# --html: one self-contained page (the browser test, label "browser", opens it in Chromium).
t=/tmp/eventmart-cli.$$
check "--html writes a report" 0 "$bin" sim --seed 2 --customers 50 --hours 1 --drop 0.1 --html $t.html
contains "the report carries the run's data inline" $t.html '"trace":\['
contains "the report names the replay command" $t.html '"replay":"eventmart sim --seed 2'
if grep -qE '<(script|link|img)[^>]+(src|href)=' $t.html; then echo "FAIL the report fetches something"; failures=$((failures + 1)); else echo "ok   the report fetches nothing (no src or href)"; fi
check "--html with --seeds is bad usage" 2 "$bin" sim --seeds 3 --html $t.html
check "--html to a folder that is not there is bad usage" 2 "$bin" sim --customers 5 --html /nonexistent/r.html
check "a failing bug run still writes its report" 1 "$bin" sim --bug float-money --customers 100 --hours 1 --html $t.fail.html
contains "the failing report names the violation" $t.fail.html 'payment_equals_basket'

# Scenario files: --save-scenario writes one, --scenario replays it exactly.
check "--save-scenario writes a seeded run" 0 "$bin" sim --seed 9 --customers 100 --hours 1 --faults swarm --save-scenario $t.scn.json --found "cli test" --json
h1=$(grep -o '"trace_hash":"[0-9a-f]*"' $t.out)
contains "the scenario file keeps the seed" $t.scn.json '"seed": 9'
contains "the scenario file keeps what it found" $t.scn.json '"found": "cli test"'
check "--scenario replays it" 0 "$bin" sim --scenario $t.scn.json --json
h2=$(grep -o '"trace_hash":"[0-9a-f]*"' $t.out)
if [ -n "$h1" ] && [ "$h1" = "$h2" ]; then echo "ok   a saved scenario replays with the same trace hash"; else echo "FAIL scenario replay differs: $h1 vs $h2"; failures=$((failures + 1)); fi
check "a failing scenario replay names the file" 1 "$bin" sim --scenario "$(dirname "$0")/regressions/scenario-float-money.json"
contains "the replay command is the scenario file" $t.err 'replay with: eventmart sim --scenario'
check "--scenario with --customers is bad usage" 2 "$bin" sim --scenario $t.scn.json --customers 5
check "--scenario of a missing file is bad usage" 2 "$bin" sim --scenario /nonexistent.json
printf '{"eventmart_scenario": 1, "seed": 1, "customers": "many"}' > $t.bad.json
check "a malformed scenario file is bad usage" 2 "$bin" sim --scenario $t.bad.json
contains "the error names the key" $t.err 'customers: must be an integer'
printf 'not json' > $t.bad.json
check "a scenario file that is not JSON is bad usage" 2 "$bin" sim --scenario $t.bad.json
check "--found without --save-scenario is bad usage" 2 "$bin" sim --found x
check "--save-scenario with --seeds is bad usage" 2 "$bin" sim --seeds 2 --save-scenario $t.scn2.json
rm -f $t.html $t.fail.html $t.scn.json $t.scn2.json $t.bad.json

check "the readable report runs" 0 "$bin" sim --seed 3 --customers 100 --hours 1
contains "report lists invariants" /tmp/eventmart-cli.$$.out "ok    departure_paid_once"

# serve, scan and load: usage errors are caught before anything connects.
check "serve --help exits 0" 0 "$bin" serve --help
for opt in --service --all --broker --chain --store --data-dir --wire --durability --username \
           --password --ca-file --cert-file --key-file --config --instance --metrics-listen \
           --mqtt-version --session-expiry --welcome-expiry; do
  contains "serve help explains $opt" /tmp/eventmart-cli.$$.out "$opt"
done
check "serve without a service is bad usage" 2 "$bin" serve
contains "it says what is missing" /tmp/eventmart-cli.$$.err "--service NAME or --all"
check "serve --metrics-listen without a port is bad usage" 2 "$bin" serve --all --metrics-listen 127.0.0.1
check "serve --metrics-listen with a host name is bad usage" 2 "$bin" serve --all --metrics-listen localhost:9464
check "EVENTMART_METRICS_LISTEN is checked too" 2 env EVENTMART_METRICS_LISTEN=nonsense "$bin" serve --all
check "serve of an unknown service is bad usage" 2 "$bin" serve --service cashier
check "an unknown wire format is bad usage" 2 "$bin" serve --all --wire xml
check "an unknown durability is bad usage" 2 "$bin" serve --all --durability maybe
check "--mqtt-version 4 is bad usage" 2 "$bin" serve --all --mqtt-version 4
contains "the error names the versions" /tmp/eventmart-cli.$$.err "must be 5 or 3.1.1"
check "EVENTMART_MQTT_VERSION is checked too" 2 env EVENTMART_MQTT_VERSION=3 "$bin" serve --all
check "a session expiry of 0 is bad usage" 2 "$bin" serve --all --session-expiry 0
check "a welcome expiry of a year is bad usage" 2 "$bin" serve --all --welcome-expiry 31536000
check "a broker URI that is not tcp:// or ssl:// is bad usage" 2 "$bin" serve --all --broker http://x
check "a bad URI in a --broker list is bad usage" 2 "$bin" serve --all --broker tcp://127.0.0.1:1,http://x
check "a bad URI in a repeated --broker is bad usage" 2 "$bin" serve --all --broker tcp://127.0.0.1:1 --broker ftp://x
contains "the error names the bad URI" /tmp/eventmart-cli.$$.err "ftp://x"
check "a missing config file is bad usage" 2 "$bin" serve --all --config /nonexistent/eventmart.conf
check "EVENTMART_* variables set options" 2 env EVENTMART_WIRE=xml "$bin" serve --all
contains "the variable's value is what was wrong" /tmp/eventmart-cli.$$.err "xml"
printf 'all = true\ndurability = sometimes\n' > /tmp/eventmart-cli.$$.conf
check "a config file sets options" 2 "$bin" serve --config /tmp/eventmart-cli.$$.conf
contains "the config file's value is what was wrong" /tmp/eventmart-cli.$$.err "sometimes"
check "an unusable data dir cannot start" 3 "$bin" serve --all --data-dir /proc/eventmart --no-stdin
check "scan --help exits 0" 0 "$bin" scan --help
check "scan without a reading is bad usage" 2 "$bin" scan --customer 2
check "scan without a customer is bad usage" 2 "$bin" scan arrival
check "a zero quantity is bad usage" 2 "$bin" scan departure --customer 2 --items 5:0
check "scan to a broker that is not there exits 1" 1 "$bin" scan arrival --customer 2 \
  --broker tcp://127.0.0.1:9 --timeout 1
contains "it says the broker did not confirm" /tmp/eventmart-cli.$$.err "did not confirm"
check "load --help exits 0" 0 "$bin" load --help
contains "load help explains --json" /tmp/eventmart-cli.$$.out "--json"
check "load of no customers is bad usage" 2 "$bin" load --customers 0
check "a negative rate is bad usage" 2 "$bin" load --rate -1

# Usage errors a person can act on (issue 9): ranges that cannot be meant, stray words, a
# folder as a config file, a service named twice, an instance that is not one topic level.
check "a seed range of 2^64 seeds is bad usage" 2 "$bin" sim --seeds 0..18446744073709551615
contains "it says the range cannot be meant" /tmp/eventmart-cli.$$.err "cannot be meant"
check "a seed count past 2^64 is bad usage" 2 "$bin" sim --seed 18446744073709551615 --seeds 2
check "stray words are bad usage" 2 "$bin" serve --all stray words
check "stray words after load are bad usage" 2 "$bin" load extra
check "stray words after sim are bad usage" 2 "$bin" sim extra
check "a folder as --config is bad usage" 2 "$bin" serve --all --config /tmp
contains "it says it is not a file" /tmp/eventmart-cli.$$.err "is not a file"
check "a service named twice is bad usage" 2 "$bin" serve --service fastlane-finale --service fastlane-finale
check "an instance with a slash is bad usage" 2 "$bin" serve --service fastlane-finale --instance a/b
check "a limit out of range is bad usage" 2 "$bin" serve --all --max-basket-units 0
check "serve --help lists the limits" 0 "$bin" serve --help
for opt in --max-payload-bytes --max-basket-lines --max-units-per-line --max-basket-units --max-id-length; do
  contains "serve help explains $opt" /tmp/eventmart-cli.$$.out "$opt"
done
# The inbox must remember an id longer than the broker may hold a message (7/8 of the
# retention: a service refuses an older event, its id may be pruned).
check "a session expiry the inbox cannot outlast is bad usage" 2 "$bin" serve --all --session-expiry 2592000
contains "it states the rule" /tmp/eventmart-cli.$$.err "7/8 of --inbox-retention-days"
check "a retention the default session expiry outlasts is bad usage" 2 "$bin" serve --all --inbox-retention-days 7
check "a scan id with a blank is bad usage" 2 "$bin" scan arrival --customer 2 --scan-id "a b"

# sim --knob: the real code's tunables (sim/knobs.h).
check "an unknown knob is bad usage" 2 "$bin" sim --knob nope=1
contains "it lists the knobs" /tmp/eventmart-cli.$$.err "relay_batch"
check "a knob out of range is bad usage" 2 "$bin" sim --knob relay_batch=0 --customers 10
check "a knob given twice is bad usage" 2 "$bin" sim --knob wire=1 --knob wire=2 --customers 10
check "a knob cannot go with the swarm" 2 "$bin" sim --knob relay_batch=1 --faults swarm
check "knobs the inbox rule refuses are bad usage" 2 "$bin" sim --knob session_expiry_s=3600 --knob inbox_retention_s=3600 --customers 10
check "a day with knobs set passes" 0 "$bin" sim --knob relay_batch=1 --knob wire=2 --knob prune_every=3 --knob inbox_retention_s=3600 --customers 300
contains "its report names them" /tmp/eventmart-cli.$$.out "knobs       relay_batch=1 prune_every=3 inbox_retention_s=3600 wire=2"

# display: usage only here (the page itself: tests/display_test.cpp, label "browser").
check "display --help exits 0" 0 "$bin" display --help
contains "display help explains --listen" /tmp/eventmart-cli.$$.out "--listen"
check "display --listen without a port is bad usage" 2 "$bin" display --listen 127.0.0.1
check "display --idle-after 0 is bad usage" 2 "$bin" display --idle-after 0

# chaos: usage only here (the runs themselves are the CTest label "chaos").
check "chaos --help exits 0" 0 "$bin" chaos --help
for opt in --seed --runs --duration --rate --faults --out --json --bug; do
  contains "chaos help explains $opt" /tmp/eventmart-cli.$$.out "$opt"
done
check "chaos: an unknown fault kind is bad usage" 2 "$bin" chaos --faults reset,meteor
contains "chaos names the unknown kind" /tmp/eventmart-cli.$$.err "meteor"
check "chaos: a zero rate is bad usage" 2 "$bin" chaos --rate 0
check "chaos: a one-second run is bad usage" 2 "$bin" chaos --duration 1
check "chaos: zero runs is bad usage" 2 "$bin" chaos --runs 0
check "chaos: --html with several runs is bad usage" 2 "$bin" chaos --runs 2 --html /tmp/eventmart-cli.$$.chaos.html
check "chaos: a serve binary that is not there is bad usage" 2 "$bin" chaos --serve-binary /nonexistent/eventmart
check "the shipped serve has no --bug" 2 "$bin" serve --service fastlane-finale --bug no-dedup

check "sim --trace to a full disk fails with exit 3" 3 "$bin" sim --seed 1 --customers 50 --hours 1 --trace /dev/full
contains "and says the trace is incomplete" /tmp/eventmart-cli.$$.err "No space left on device"
check "serve --chain \$SYS is bad usage" 2 "$bin" serve --all --chain '$SYS'
check "serve --store \$share is bad usage" 2 "$bin" serve --all --store '$share'
contains "and says why" /tmp/eventmart-cli.$$.err "belong to the broker"
for card in 0 abc -1 99999999999999999999; do
  check "scan --customer $card is bad usage, never 'sent'" 2 "$bin" scan arrival --customer "$card" --broker tcp://127.0.0.1:1
done
contains "scan names the unreadable card" /tmp/eventmart-cli.$$.err "unreadable loyalty card"

check "sim refuses a swarm that cannot fit in memory" 2 "$bin" sim --customers 10000000 --seeds 1..256 --jobs 256
contains "and says how much it needs" /tmp/eventmart-cli.$$.err "of memory"

# Precedence, for every option of serve that takes a value (switches are printed "a switch"): the command line wins over the
# environment (EVENTMART_*), which wins over the --config file, and a repeatable option is never
# added up across them (--service in the file used to be added to the command line's).
conf=/tmp/eventmart-cli.$$.precedence.conf
options=$("$bin" serve --print-config | sed -n 's/^\([a-z0-9-]*\)  # default$/\1/p')
for opt in $options; do
  var="EVENTMART_$(echo "$opt" | tr 'a-z-' 'A-Z_')"
  echo "$opt = f-$opt" >"$conf"
  line=$(env "$var=e-$opt" "$bin" serve --config "$conf" "--$opt" "c-$opt" --print-config | grep "^$opt ")
  case "$line" in *"# command line") ;; *) echo "FAIL $opt: the command line lost: $line"; failures=$((failures + 1)) ;; esac
  case "$opt" in *password*) ;; *) case "$line" in "$opt = c-$opt "*) ;; *) echo "FAIL $opt: $line"; failures=$((failures + 1)) ;; esac ;; esac
  line=$(env "$var=e-$opt" "$bin" serve --config "$conf" --print-config | grep "^$opt ")
  case "$line" in *"# environment ($var)") ;; *) echo "FAIL $opt: the environment lost to the file: $line"; failures=$((failures + 1)) ;; esac
  line=$(env "$var=" "$bin" serve --config "$conf" --print-config | grep "^$opt ")
  case "$line" in *"# file $conf") ;; *) echo "FAIL $opt: an empty $var hid the file: $line"; failures=$((failures + 1)) ;; esac
done
echo "ok   precedence checked for: $(echo $options | wc -w) options"
printf 'service = fastlane-finale\n' >"$conf"
"$bin" serve --config "$conf" --service inventory-intel --print-config >/tmp/eventmart-cli.$$.out
contains "--service on the command line replaces the file's" /tmp/eventmart-cli.$$.out "^service = inventory-intel  # command line"
"$bin" serve --config "$conf" --all --print-config >/tmp/eventmart-cli.$$.out
contains "--all on the command line replaces the file's --service" /tmp/eventmart-cli.$$.out "^service  # default$"
env EVENTMART_SERVICE=hello-helper "$bin" serve --config "$conf" --print-config >/tmp/eventmart-cli.$$.out
contains "EVENTMART_SERVICE replaces the file's --service" /tmp/eventmart-cli.$$.out "^service = hello-helper  # environment"
env EVENTMART_NO_STDIN=1 "$bin" serve --print-config >/tmp/eventmart-cli.$$.out
contains "EVENTMART_NO_STDIN=1 sets the switch" /tmp/eventmart-cli.$$.out "^no-stdin = yes  # environment"
check "a switch from the environment must be 1 or 0" 2 env EVENTMART_NO_STDIN=maybe "$bin" serve --all
check "an empty EVENTMART_HELP does not ask for help" 2 env EVENTMART_HELP= "$bin" serve
check "EVENTMART_HELP=1 does not ask for help either" 2 env EVENTMART_HELP=1 "$bin" serve
check "no command is bad usage" 2 "$bin"
contains "no command prints the usage on stderr" /tmp/eventmart-cli.$$.err "Usage: eventmart <command>"

# eventmart explore and recipes (runs/explorer.h, sim/recipe.h)
check "explore --help exits 0" 0 "$bin" explore --help
for opt in --budget --children --depth --splits-per-mark --recipe; do
  contains "explore help explains $opt" /tmp/eventmart-cli.$$.out "$opt"
done
check "explore --budget 0 is bad usage" 2 "$bin" explore --budget 0
check "explore --budget 0s is bad usage" 2 "$bin" explore --budget 0s
check "explore --budget lots is bad usage" 2 "$bin" explore --budget lots
check "explore --children 0 is bad usage" 2 "$bin" explore --children 0
check "explore --depth 9 is bad usage" 2 "$bin" explore --depth 9
check "explore --trace is bad usage" 2 "$bin" explore --trace /tmp/eventmart-cli.$$.jsonl
check "explore --recipe is bad usage" 2 "$bin" explore --recipe 1/5:1
check "a clean exploration exits 0" 0 "$bin" explore --faults swarm --customers 100 --hours 2 --budget 12 --jobs 2 --json
for key in '"kind":"explore"' '"passed":true' '"timelines":' '"splitpoints":' '"max_depth":' \
           '"cpu_seconds":' '"marks_reached":' '"failing_timelines":\[\]'; do
  contains "explore json has $key" /tmp/eventmart-cli.$$.out "$key"
done
check "an exploration that finds a bug exits 1" 1 "$bin" explore --faults swarm --customers 200 --budget 30 --jobs 1 --bug no-outbox --json
recipe=$(grep -o '"recipe":"[0-9/:]*"' /tmp/eventmart-cli.$$.out | grep / | head -1 | cut -d'"' -f4)
thash=$(grep -o '"recipe":"'"$recipe"'","trace_hash":"[0-9a-f]*"' /tmp/eventmart-cli.$$.out | cut -d'"' -f8)
check "its failing timeline replays from its recipe and fails again" 1 "$bin" sim --recipe "$recipe" --customers 200 --faults swarm --bug no-outbox --json
contains "... with the same trace hash ($recipe)" /tmp/eventmart-cli.$$.out "\"trace_hash\":\"$thash\""
check "a recipe saves as a scenario file" 1 "$bin" sim --recipe "$recipe" --customers 200 --faults swarm --bug no-outbox --save-scenario /tmp/eventmart-cli.$$.recipe.json
check "... that replays the timeline" 1 "$bin" sim --scenario /tmp/eventmart-cli.$$.recipe.json --json
contains "... with the same trace hash" /tmp/eventmart-cli.$$.out "\"trace_hash\":\"$thash\""
# Interrupted: every process of the exploration ends with it (each dies with its parent), and
# nothing is left in shared memory (an anonymous mapping; /dev/shm as it was).
shm_before=$(ls /dev/shm 2>/dev/null | sort)
# (A job started with & has SIGINT ignored; perl puts Ctrl-C's default back before the exec.)
perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or die' \
  "$bin" explore --faults swarm --customers 1999 --budget 100000 --jobs 2 >/dev/null 2>&1 &
explorer=$!
sleep 2
forked=$(pgrep -f -- "explore --faults swarm --customers 1999" | wc -l)
kill -INT "$explorer"
wait "$explorer" 2>/dev/null
sleep 1
left=$(pgrep -f -- "explore --faults swarm --customers 1999" | wc -l)
if [ "$forked" -ge 3 ] && [ "$left" -eq 0 ]; then
  echo "ok   an interrupted exploration leaves no process ($forked were running)"
else
  echo "FAIL an interrupted exploration: $forked processes running, $left left after SIGINT"
  failures=$((failures + 1))
  pkill -KILL -f -- "explore --faults swarm --customers 1999"
fi
if [ "$(ls /dev/shm 2>/dev/null | sort)" = "$shm_before" ]; then
  echo "ok   ... and nothing in /dev/shm"
else
  echo "FAIL an interrupted exploration left files in /dev/shm"
  failures=$((failures + 1))
fi
check "a recipe that is not numbers is bad usage" 2 "$bin" sim --recipe 1/a:b
check "a recipe whose steps go back is bad usage" 2 "$bin" sim --recipe 1/50:1/20:1
check "--recipe with --seed is bad usage" 2 "$bin" sim --recipe 1/5:1 --seed 3
check "a recipe past the end of the day is bad usage" 2 "$bin" sim --recipe 1/999999999:1 --customers 20 --hours 1
contains "... saying it was made with other options" /tmp/eventmart-cli.$$.err "made with other options"

# A timeline whose world cannot go on (a database catch-up-skips-sync left corrupt by a power
# loss): a failing timeline whose recipe, a child's, replays to the same stop.
deep=(--long-outage 0.1 --power-loss 0.02 --customers 1000 --bug catch-up-skips-sync)
check "an exploration whose timelines cannot go on exits 1" 1 "$bin" explore "${deep[@]}" --seeds 25..40 --budget 60 --jobs 1 --json
stopped=$(grep -o '"recipe":"[0-9]*/[0-9/:]*","trace_hash":"[0-9a-f]*","failures":\["could_not_go_on"' /tmp/eventmart-cli.$$.out | head -1 | cut -d'"' -f4)
if [ -n "$stopped" ]; then echo "ok   a child timeline that could not go on: $stopped"; else echo "FAIL no child timeline that could not go on"; failures=$((failures + 1)); fi
check "... replays from its recipe to the same stop" 1 "$bin" sim --recipe "${stopped:-31/22032:1}" "${deep[@]}"
contains "... saying why" /tmp/eventmart-cli.$$.out "the run could not go on: .*database disk image is malformed"
check "a swarm of such seeds goes on past them" 1 "$bin" sim "${deep[@]}" --seeds 25..40 --json
contains "... counting them as failing seeds" /tmp/eventmart-cli.$$.out '"could_not_go_on":[1-9]'

# sim --localize (runs/localizer.h); sharding and merge are tests/shards_test.sh.
check "sim --help explains --localize" 0 "$bin" sim --help
for opt in --localize --futures --checkpoints --resolution --shard --jsonl; do
  contains "sim help explains $opt" /tmp/eventmart-cli.$$.out "$opt"
done
check "merge --help exits 0" 0 "$bin" merge --help
check "merge without files is bad usage" 2 "$bin" merge
check "--localize with --seeds is bad usage" 2 "$bin" sim --localize --seeds 10
check "--futures 20 (not a multiple of 8) is bad usage" 2 "$bin" sim --localize --futures 20
check "--futures without --localize is bad usage" 2 "$bin" sim --futures 16
check "--checkpoints 1 is bad usage" 2 "$bin" sim --localize --checkpoints 1
check "--resolution 0 is bad usage" 2 "$bin" sim --localize --resolution 0
check "localizing a run that holds is refused" 2 "$bin" sim --customers 200 --hours 2 --localize
contains "... saying there is nothing to localize" /tmp/eventmart-cli.$$.err "no failure to localize"
check "a localized failure exits 1" 1 "$bin" sim --seed 1 --customers 300 --crash 0.002 --bug no-outbox --localize --futures 16 --json
for key in '"kind":"localize"' '"verdict":"interval"' '"from":"19:34:50.8"' '"to":"19:35:00.0"' \
           '"failing_future":"1/' '"replay":"eventmart sim --recipe 1/' '"curve":\[{'; do
  contains "localize json has $key" /tmp/eventmart-cli.$$.out "$key"
done
future=$(grep -o '"failing_future":"[0-9/:]*"' /tmp/eventmart-cli.$$.out | cut -d'"' -f4)
check "its failing future ($future) replays failing" 1 "$bin" sim --recipe "$future" --customers 300 --crash 0.002 --bug no-outbox

rm -f /tmp/eventmart-cli.$$.*
echo "cli contract: $failures failed"
[ "$failures" -eq 0 ]
