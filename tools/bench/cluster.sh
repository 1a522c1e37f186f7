# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# `make bench` section cluster: several lbd nodes behind a BIRD2 router with
# ECMP (issue 10). Sourced by tools/bench/run.sh (report.sh loaded), which
# calls bench_cluster. Each round is one run of tests/net/test_bgp.sh (its
# own topology: client, router, three lbd nodes with their own BIRD, three
# backends) with BGP_FIGURES pointing at a file it appends "key value" lines
# to: the share of new connections per node, established connections broken
# by a drain, a link loss and a kill -9, and the router's failover time.
# CLUSTER_ROUNDS (3; 1 with QUICK) rounds.

bench_cluster() {
	local rounds=${CLUSTER_ROUNDS:-3} r figs log k v unit
	[ -n "${QUICK:-}" ] && rounds=${CLUSTER_ROUNDS:-1}
	bench_section cluster "Scale-out: three lbd nodes behind BGP/ECMP (BIRD2), full NAT"
	bench_method cluster "tests/net/test_bgp.sh per round: a router namespace running BIRD2" \
		"(kernel protocol merge paths on, fib_multipath_hash_policy=1, fixed hash seed," \
		"BFD 100 ms x 5) and three lbd nodes in XDP full-NAT mode, each announcing the VIP" \
		"through its own BIRD (eBGP, BFD). share: each node's part of 3000 new connections." \
		"broken: of ${BGP_KEEP:-60} long-lived HTTP/1.1 connections (a request every 100 ms," \
		"lbload --keep) and a stream of new ones, how many failed when a node was drained" \
		"(lbctl node drain: GRACEFUL_SHUTDOWN, then withdrawal), lost its link to the router," \
		"or was killed (kill -9 of lbd and its BIRD). failover: from the event until the" \
		"router's route has no next hop via that node. The drain is measured with plain" \
		"withdrawal (default multipath), through a resilient nexthop group put in the" \
		"router by hand (_resilient), and with flow sync between the nodes (_sync:" \
		"sync_peer, packets of moved flows sent on to their owner). _ipip: the same" \
		"drain and kill -9 on a VIP in forward ipip (backends decapsulate with lbd --decap" \
		"and answer the client directly)."
	if [ "$(id -u)" -ne 0 ] || ! command -v bird >/dev/null; then
		bench_note cluster "skipped: needs root and BIRD2 (make deps)"
		bench_section_end cluster
		return 0
	fi
	for ((r = 1; r <= rounds; r++)); do
		figs=$BENCH_RES/cluster-figures-$r.txt
		log=$BENCH_RES/cluster-round-$r.log
		: >"$figs"
		bench_progress "cluster: round $r of $rounds (tests/net/test_bgp.sh)"
		BGP_FIGURES=$figs O=$O timeout 900 bash "$REPO_DIR/tests/net/test_bgp.sh" >"$log" 2>&1 ||
			bench_note cluster "round $r: test_bgp.sh failed: $(grep '^FAIL' "$log" | head -3 | tr '\n' ' ')"
		while read -r k v; do
			case $k in
			share_*) unit=fraction ;;
			*_ms) unit=ms ;;
			*) unit=connections ;;
			esac
			bench_sample cluster "$k" "$unit" "$v"
		done <"$figs"
	done
	_bench_progress_clear
	bench_target cluster drain_keep_broken_fullnat_sync '<=' 0 \
		"established connections broken by a drain (full NAT, flow sync)"
	bench_target cluster linkdown_failover_ms '<=' 1000 "failover after a node's link loss (BFD)"
	bench_target cluster drain_keep_broken_ipip '<=' 0 "established connections broken by a drain (ipip)"
	bench_target cluster kill_keep_broken_ipip '<=' 0 "established connections broken by a kill -9 (ipip)"
	bench_plot cluster connections "Connections broken (of ${BGP_KEEP:-60} long-lived) per event" 'keep_broken'
	bench_section_end cluster
}
