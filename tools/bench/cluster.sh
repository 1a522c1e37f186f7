# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# `make bench` section cluster: several lbd nodes behind a BIRD2 router with
# ECMP (issue 10). Sourced by tools/bench/run.sh (report.sh loaded), which
# calls bench_cluster. Each round is one run of tests/net/test_bgp.sh (its
# own topology: client, router, three lbd nodes with their own BIRD, three
# backends, IPv4 and IPv6) with BGP_FIGURES pointing at a file it appends
# "key value" lines to: the share of new connections per node and VIP,
# established connections broken by a drain, a link loss and a kill -9 in
# full NAT, ipip, gue, ipip6 and gue6, and the router's failover time.
# CLUSTER_ROUNDS (3; 1 with QUICK) rounds.

bench_cluster() {
	local rounds=${CLUSTER_ROUNDS:-3} r figs log k v unit
	[ -n "${QUICK:-}" ] && rounds=${CLUSTER_ROUNDS:-1}
	bench_section cluster "Scale-out: three lbd nodes behind BGP/ECMP (BIRD2), full NAT, ipip and gue, IPv4 and IPv6"
	bench_method cluster "tests/net/test_bgp.sh per round: a router namespace running BIRD2" \
		"(kernel protocols merge paths on, fib_multipath_hash_policy=1 for IPv4 and IPv6," \
		"fixed hash seed, BFD 100 ms x 5) and three lbd nodes (XDP), each announcing five" \
		"VIPs through its own BIRD (eBGP over IPv4 and over IPv6, BFD): full NAT (no suffix," \
		"or _fullnat), forward ipip and gue over IPv4 (_ipip, _gue) and over IPv6 (_ipip6:" \
		"IPv6 in IPv6, _gue6: GUE over IPv6); the backends decapsulate with lbd --decap and" \
		"answer the client directly. share: each node's part of 3000 new connections per VIP" \
		"(share_nI: full NAT, share_MODE_nI), the five VIPs at once." \
		"broken: of ${BGP_KEEP:-60} long-lived HTTP/1.1 connections (a request every 100 ms," \
		"lbload --keep) and a stream of new ones, how many failed when a node was drained" \
		"(lbctl node drain: GRACEFUL_SHUTDOWN, then withdrawal), lost its link to the router," \
		"or was killed (kill -9 of lbd and its BIRD); link loss and kill -9 with all five VIPs" \
		"at once (link loss: 7 s request timeout, so TCP retransmits past the BFD detection)," \
		"the encapsulated drain with its four VIPs at once. failover: from the event until" \
		"the router's routes (IPv4 and IPv6) have no next hop via that node. The full-NAT" \
		"drain is measured with plain withdrawal (default multipath), through a resilient" \
		"nexthop group put in the router by hand (_resilient), and with flow sync between" \
		"the nodes (_sync: sync_peer, packets of moved flows sent on to their owner;" \
		"fullnat6_sync: a full-NAT VIP over IPv6 in the same drain)." \
		"A full-NAT crash breaks the dead node's own connections (*_fullnat_own: those the" \
		"backends had from its address at that moment); *_fullnat_others: how many more broke" \
		"(the router moved other nodes' flows), with default multipath (kill, linkdown) and" \
		"with a resilient nexthop group (kill_resilient)." \
		"sync_bytes_per_s_10k: what the draining node sends its two peers during that" \
		"drain (6 s) with 10000 more open flows in its conntrack map; sync_flows_received_10k:" \
		"the flows its peers took from all pushes meanwhile."
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
		BGP_FIGURES=$figs BGP_CRASH_RESILIENT=1 O=$O timeout 900 bash "$REPO_DIR/tests/net/test_bgp.sh" >"$log" 2>&1 ||
			bench_note cluster "round $r: test_bgp.sh failed: $(grep '^FAIL' "$log" | head -3 | tr '\n' ' ')"
		while read -r k v; do
			case $k in
			share_*) unit=fraction ;;
			*_ms) unit=ms ;;
			*bytes_per_s*) unit=bytes/s ;;
			*flows_received*) unit=flows ;;
			*) unit=connections ;;
			esac
			bench_sample cluster "$k" "$unit" "$v"
		done <"$figs"
	done
	_bench_progress_clear
	bench_target cluster drain_keep_broken_fullnat_sync '<=' 0 \
		"established connections broken by a drain (full NAT, flow sync)"
	bench_target cluster linkdown_failover_ms '<=' 1000 "failover after a node's link loss (BFD)"
	bench_target cluster sync_bytes_per_s_10k '<=' 400000 \
		"flow sync during a drain with 10k flows (a whole table every second: ~950000)"
	bench_target cluster kill_failover_ms '<=' 1000 "failover after a kill -9 of a node's lbd and BIRD"
	bench_target cluster kill_resilient_keep_broken_fullnat_others '<=' 0 \
		"full-NAT kill -9 with a resilient nexthop group: connections broken beyond the node's own"
	for m in ipip gue ipip6 gue6; do
		bench_target cluster "drain_keep_broken_$m" '<=' 0 "established connections broken by a drain ($m)"
		bench_target cluster "linkdown_keep_broken_$m" '<=' 0 "established connections broken by a node's link loss ($m)"
		bench_target cluster "kill_keep_broken_$m" '<=' 0 "established connections broken by a kill -9 ($m)"
	done
	bench_plot cluster connections "Connections broken (of ${BGP_KEEP:-60} long-lived) per event" 'keep_broken'
	bench_section_end cluster
}
