// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* XDP entry point of the lbd data path. */
#include "lib/common.h"

#define LB_CTX                  struct xdp_md
#define LB_PASS                 XDP_PASS
#define LB_DROP                 XDP_DROP
#define LB_TX(ctx)              XDP_TX
#define LB_REDIRECT(ctx, ifi)   bpf_redirect(ifi, 0)
#define LB_IFINDEX(ctx)         ((ctx)->ingress_ifindex)
#define LB_DATA(ctx)            ((void *)(long)(ctx)->data)
#define LB_DATA_END(ctx)        ((void *)(long)(ctx)->data_end)
#define LB_FIB_CACHE            1
#define LB_FLOW_CSUM            1
#define LB_CALLS_MAP            xdp_calls

#include "lib/lb.h"

SEC("xdp")
int lb_xdp(struct xdp_md *ctx)
{
	return lb_process(ctx);
}

/* xdp_calls[LB_CALL_NEW_FLOW]: the first packet of a flow (lib/lb.h). */
SEC("xdp")
int lb_xdp_new(struct xdp_md *ctx)
{
	return lb_process_new(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
