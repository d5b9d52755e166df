/*
 * droptop: count kernel packet drops in the kernel.
 *
 * Attached to the tracepoint skb:kfree_skb (args: skb, location, reason
 * [, rx_sk]). Every drop is counted in per-CPU memory; no per-packet event ever
 * goes to user space.
 *
 * Two entry points, one body (count_drop). With -DTP_BTF the program is a
 * BTF-typed raw tracepoint (tp_btf, BPF_PROG_TYPE_TRACING): args[0] is a
 * verifier-typed struct sk_buff pointer, so skb->dev and skb->len are plain
 * loads instead of a bpf_probe_read_kernel() call, which was the largest part
 * of the per-drop cost (112 -> 80 ns/drop on the benchmark VM, of which ~58 ns
 * is the stats' own clock reads; bench/README.md). bcc cannot load that program
 * type itself; droptop's loader does (collector/tpbtf.py). Without TP_BTF the
 * entry point is the plain raw tracepoint: the fallback for kernels or
 * verifiers that refuse tp_btf, counting exactly the same.
 *
 * No kernel struct layout is compiled in: every offset is read from the running
 * kernel's BTF by droptop and passed in with -D, so any Linux headers tree will
 * do for bcc's compile.
 *
 * Cost model. A drop flood is usually a burst of identical drops on one CPU
 * (same task, device, location, reason), so the hot path is a per-CPU one-entry
 * cache: if this drop matches the previous one on this CPU within the same
 * jiffy, it is counted without hashing the wide key. Only a miss reads comm,
 * ifindex, netns and task flags and looks the key up. Counters live in a per-CPU
 * array indexed by a small integer that the miss path allocates once per key. On
 * x86-64 (BURST_COUNT) a hit counts in the cache slot itself and the next miss
 * stores the slot's count back into the counter; user space reads the slots too
 * and takes the larger of slot and counter, so totals are exact at every read
 * (see count_drop and collector/burst.py). A hit makes one helper call
 * (bpf_get_current_task, made first so nothing has to survive it), one per-CPU
 * array lookup and a jiffies read that the verifier inlines, seven compares in
 * one cache line, two adds and the sampled-stack test on the count it just
 * made: 62 BPF instructions, no branch taken. The miss path keeps its structs in
 * a per-CPU scratch map so the program's stack stays under 64 bytes: past that
 * the JIT gives a tracing program a private per-CPU stack, which every run pays
 * for.
 *
 * Attribution (whose drop it is). Each key also records whether the drop ran on
 * an interrupt stack (softirq or hardirq) rather than the task's own stack: the
 * address of the tracepoint's argument array (on the kernel stack in use) against
 * [task->stack, task->stack + THREAD_SIZE). That is one subtraction on the hot
 * path, where preempt_count (a per-CPU variable that needs KALLSYMS_ALL to
 * reach) is out of reach. How softirq was entered
 * (inline in the task's syscall, or at interrupt exit) is read from the sampled
 * stacks in user space. The packet's socket (the tracepoint's rx_sk where the
 * kernel passes one, else skb->sk unless it is a timewait or request socket)
 * is part of the burst-cache tag; only a miss reads its inode and cgroup id.
 * Without a socket the key takes the current task's cgroup, and a packet
 * without a device takes its netns from the socket or the task.
 *
 * Required -D macros (byte offsets from BTF):
 *   SKB_DEV_OFF SKB_LEN_OFF DEV_IFINDEX_OFF DEV_NDNET_OFF DEV_NAME_OFF
 *   NET_INUM_OFF TASK_FLAGS_OFF TASK_STACK_OFF TASK_NSPROXY_OFF NSPROXY_NET_OFF
 *   SKB_SK_OFF SK_STATE_OFF SK_SOCKET_OFF SOCK_INO_OFF SK_NET_OFF THREAD_SIZE
 *   MAX_KEYS
 * Optional: HAVE_REASON, HAVE_RX_SK, TP_BTF, WITH_STACKS, STACK_ENTRIES,
 *   STACK_KEYS, STACK_FIRST, STACK_EVERY_MASK, SAMPLE_GAP_NS, PF_KTHREAD_FLAG, BURST_COUNT,
 *   SK_CGROUP_OFF CGROUP_KN_OFF KN_ID_OFF (socket cgroups; all three or none),
 *   WITH_SAMPLES SAMPLE_ENTRIES SAMPLE_BYTES SKB_HEAD_OFF SKB_DATA_OFF SKB_TAIL_OFF
 *   SKB_PROTOCOL_OFF SKB_MAC_OFF SKB_NETWORK_OFF DEV_TYPE_OFF (packet samples)
 *
 * Packet samples. The drops that get a stack (each key's first STACK_FIRST on a
 * CPU, then one in STACK_EVERY_MASK + 1, at most one per SAMPLE_GAP_NS) also get
 * their headers copied: up to SAMPLE_BYTES from the network header, the MAC header
 * before it (up to 32 bytes), skb->protocol, the length, the time and the device
 * type, into slot (key, CPU, 0..7) of an LRU hash: the first four of a key on a CPU
 * and the latest four after them. Never an event per packet; a flood of one key
 * copies at most four packets a second per CPU.
 *
 * Benchmark switches, for bench/bench_variants.py only; all off in droptop's
 * own build, which none of them changes when unset. Each switches one part of
 * the hot path off or to an alternative, so the kernel's BPF stats can time it:
 *   DROPTOP_BENCH_EMPTY      the entry point returns at once: the floor of the
 *                            attach type
 *   DROPTOP_BENCH_EMPTY_TASK the entry point calls bpf_get_current_task() and
 *                            returns: the price of the hot path's one helper call
 *   DROPTOP_BENCH_NO_SKB     no skb field read at all (dev = NULL, len = 0)
 *   DROPTOP_BENCH_NO_TASK    the burst cache is not tagged by task (saves the
 *                            helper call; wrong comm when tasks interleave)
 *   DROPTOP_BENCH_PID_TAG    tag the burst cache with bpf_get_current_pid_tgid()
 *   DROPTOP_BENCH_TASK_BTF   tag it with bpf_get_current_task_btf() (tp_btf only)
 *   DROPTOP_BENCH_NO_BURST   every drop adds to its counter (the build without
 *                            BURST_COUNT): what counting in the burst slot saves
 */

#ifndef MAX_KEYS
#error "MAX_KEYS must be given"
#endif
#if defined(DROPTOP_BENCH_NO_BURST)
#undef BURST_COUNT
#endif
#if defined(DROPTOP_BENCH_TASK_BTF) && !defined(TP_BTF)
#error "DROPTOP_BENCH_TASK_BTF needs TP_BTF (bpf_get_current_task_btf is for tracing programs)"
#endif
#ifndef PF_KTHREAD_FLAG
#define PF_KTHREAD_FLAG 0x00200000 /* include/linux/sched.h, unchanged since 2.6 */
#endif
#ifndef STACK_FIRST
#define STACK_FIRST 4 /* a key's first drops on each CPU always get a stack */
#endif
#ifndef STACK_EVERY_MASK
#define STACK_EVERY_MASK 4095 /* then one stack per 4096 drops per CPU */
#endif
#ifndef SAMPLE_GAP_NS
#define SAMPLE_GAP_NS 250000000ULL /* and at most 4 of those a second per key and CPU */
#endif

/* The burst-cache tag of the current task, and the task_struct behind a tag. */
#if defined(DROPTOP_BENCH_NO_TASK)
#define CURRENT_TASK_TAG() 0
#elif defined(DROPTOP_BENCH_PID_TAG)
#define CURRENT_TASK_TAG() bpf_get_current_pid_tgid()
#elif defined(DROPTOP_BENCH_TASK_BTF)
#define CURRENT_TASK_TAG() ((u64)bpf_get_current_task_btf())
#else
#define CURRENT_TASK_TAG() bpf_get_current_task()
#endif
#if defined(DROPTOP_BENCH_NO_TASK) || defined(DROPTOP_BENCH_PID_TAG)
#define TASK_OF_TAG(tag) ((void *)bpf_get_current_task()) /* the tag is not the task */
#else
#define TASK_OF_TAG(tag) ((void *)(tag))
#endif

#define STR2(x) #x
#define STR(x) STR2(x)
#define COMM_LEN 16
#define CLAIM_TRIES 8
#define IFNAME_LEN 16
#define FLAG_KERNEL_CONTEXT 1
#define FLAG_IRQ 2 /* ran on an interrupt stack, not the task's own */
#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12

struct drop_key {
	u64 location;
	u64 sock_ino;
	u64 cgroup;
	u32 reason;
	u32 ifindex;
	u32 netns;
	u32 flags;
	char comm[COMM_LEN];
};

/* key_info[idx]: what counter index idx counts; inserted once, when idx is claimed. */
struct key_info {
	struct drop_key key;
	char ifname[IFNAME_LEN];
};

struct counters {
	u64 packets;
	u64 bytes;
	u64 sampled_ns; /* when this key's last periodic sample on this CPU was taken */
};

/* The per-CPU burst cache. The fields a hit compares come first, in one cache
 * line; the miss path's scratch after them. */
struct slot {
	u64 task;
	u64 dev;
	u64 sk;
	u64 location;
	u64 jiffies;
	u64 ctxv;   /* the context address the slot was resolved at: same address, same stack */
	u64 reason; /* as the tracepoint passes it: compared without a truncation */
	u64 seq;    /* BURST_COUNT: odd while the miss path changes n, nb and idx */
	u64 n;      /* BURST_COUNT: this CPU's packets and bytes of key idx: counts[idx] */
	u64 nb;     /* when the slot was resolved, plus the drops counted here since */
	u32 idx;
	u32 irq;
	u32 len;
	u32 pad;
	u64 sampled; /* drops sampled on this CPU (stacks, headers): user space's cue to re-read */
	u64 stack;  /* task->stack of s->task */
	u64 fp;     /* scratch: the context address as a plain number */
#ifndef TP_BTF
	/* The raw tracepoint's probe read, dev up to the u32 len (a literal 4: bcc's
	 * description of the map value breaks on a sizeof() in an array bound). */
	char span[SKB_LEN_OFF - SKB_DEV_OFF + 4];
#endif
};

struct stack_key {
	u32 idx;
	s32 stackid;
};

BPF_HASH(key_to_idx, struct drop_key, u32, MAX_KEYS);
BPF_HASH(key_info, u32, struct key_info, MAX_KEYS);
/* Index MAX_KEYS is the overflow counter: drops seen while every index was taken. */
BPF_PERCPU_ARRAY(counts, struct counters, MAX_KEYS + 1);
BPF_ARRAY(next_idx, u32, 1);
BPF_PERCPU_ARRAY(cache, struct slot, 1);

#ifdef WITH_STACKS
BPF_STACK_TRACE(stacks, STACK_ENTRIES);
BPF_HASH(stack_counts, struct stack_key, u64, STACK_KEYS);
#endif

#define MAC_BYTES 32
#define NO_HEADER 0xffff /* a u16 header offset that was never set */
#ifndef SAMPLE_BYTES
#define SAMPLE_BYTES 128
#endif
struct sample_key {
	u32 idx;
	u16 cpu;
	u16 pos;
};
struct sample {
	u64 ktime;
	u32 length; /* from the network header to the end of the packet */
	u16 protocol; /* skb->protocol, network byte order */
	u16 dev_type;
	u8 mac_len;
	u8 net_len;
	u16 pad;
	u8 mac[MAC_BYTES];
	u8 net[SAMPLE_BYTES + 1]; /* +1: a zero-length copy still has a buffer */
};
#ifdef WITH_SAMPLES
BPF_TABLE("lru_hash", struct sample_key, struct sample, samples, SAMPLE_ENTRIES);
#endif

/* Miss-path scratch space, so that the program's stack stays under 64 bytes:
 * past that the JIT gives a tracing program a private per-CPU stack, which
 * costs every run a per-CPU address computation and a push/pop around each
 * helper call, on the hit path too. */
struct scratch {
	struct key_info info;
	void *net;
	void *ptr;
	u32 tflags;
	u8 state;
#ifdef WITH_STACKS
	struct stack_key sk;
	u64 one;
#endif
#ifdef WITH_SAMPLES
	struct sample_key skey;
	struct sample smp;
	void *head;
	void *data;
	u32 len;
	u32 tail;
	u16 mh;
	u16 nh;
#endif
};
BPF_PERCPU_ARRAY(scratch, struct scratch, 1);

/* The key of the drop the burst-cache slot s now holds (s->task, s->dev,
 * s->location, s->reason), resolved to its counter index. Everything is read
 * back from s and the scratch space rather than kept in locals: a value that had
 * to survive this path's helper calls would be spilled to the stack, and the
 * compiler would place that spill on the hit path as well. */
static __always_inline u32 lookup_or_add_key(struct slot *s)
{
	u32 zero = 0;
	struct scratch *sc = scratch.lookup(&zero);
	if (!sc)
		return MAX_KEYS;
	struct key_info *info = &sc->info;
	struct drop_key *k = &info->key;

	__builtin_memset(info, 0, sizeof(*info));
	k->location = s->location;
	k->reason = (u32)s->reason;
	if (s->dev) {
		void *dev = (void *)s->dev;
		sc->net = NULL;
		bpf_probe_read_kernel(&k->ifindex, sizeof(k->ifindex), dev + DEV_IFINDEX_OFF);
		bpf_probe_read_kernel(&sc->net, sizeof(sc->net), (void *)s->dev + DEV_NDNET_OFF);
		if (sc->net)
			bpf_probe_read_kernel(&k->netns, sizeof(k->netns), sc->net + NET_INUM_OFF);
	}
	if (s->irq)
		k->flags |= FLAG_IRQ;
	if (s->sk) {
		/* A timewait or request socket is not a full struct sock: no sk_socket. */
		sc->state = 0;
		bpf_probe_read_kernel(&sc->state, 1, (void *)s->sk + SK_STATE_OFF);
		if (sc->state != TCP_TIME_WAIT && sc->state != TCP_NEW_SYN_RECV) {
			sc->ptr = NULL;
			bpf_probe_read_kernel(&sc->ptr, sizeof(sc->ptr), (void *)s->sk + SK_SOCKET_OFF);
			if (sc->ptr)
				bpf_probe_read_kernel(&k->sock_ino, sizeof(k->sock_ino),
						      sc->ptr + SOCK_INO_OFF);
#ifdef SK_CGROUP_OFF
			sc->ptr = NULL;
			bpf_probe_read_kernel(&sc->ptr, sizeof(sc->ptr), (void *)s->sk + SK_CGROUP_OFF);
			if (sc->ptr) {
				bpf_probe_read_kernel(&sc->ptr, sizeof(sc->ptr), sc->ptr + CGROUP_KN_OFF);
				if (sc->ptr)
					bpf_probe_read_kernel(&k->cgroup, sizeof(k->cgroup),
							      sc->ptr + KN_ID_OFF);
			}
#endif
		}
		if (!k->netns) {
			sc->net = NULL;
			bpf_probe_read_kernel(&sc->net, sizeof(sc->net), (void *)s->sk + SK_NET_OFF);
			if (sc->net)
				bpf_probe_read_kernel(&k->netns, sizeof(k->netns), sc->net + NET_INUM_OFF);
		}
	}
	if (!k->sock_ino && !k->cgroup)
		k->cgroup = bpf_get_current_cgroup_id();
	if (!k->netns) { /* no device and no socket: the task's own netns */
		sc->ptr = NULL;
		bpf_probe_read_kernel(&sc->ptr, sizeof(sc->ptr),
				      TASK_OF_TAG(s->task) + TASK_NSPROXY_OFF);
		if (sc->ptr) {
			sc->net = NULL;
			bpf_probe_read_kernel(&sc->net, sizeof(sc->net), sc->ptr + NSPROXY_NET_OFF);
			if (sc->net)
				bpf_probe_read_kernel(&k->netns, sizeof(k->netns), sc->net + NET_INUM_OFF);
		}
	}
	bpf_get_current_comm(&k->comm, sizeof(k->comm));
	if ((u32)bpf_get_current_pid_tgid() == 0) {
		k->flags |= FLAG_KERNEL_CONTEXT; /* idle task: softirq on an idle CPU */
	} else {
		sc->tflags = 0;
		bpf_probe_read_kernel(&sc->tflags, sizeof(sc->tflags),
				      TASK_OF_TAG(s->task) + TASK_FLAGS_OFF);
		if (sc->tflags & PF_KTHREAD_FLAG)
			k->flags |= FLAG_KERNEL_CONTEXT;
	}

	u32 *found = key_to_idx.lookup(k);
	if (found)
		return *found;

	/* Claim the lowest free counter index. BPF (as bcc's LLVM emits it) has
	 * no fetch-and-add with a result, so the claim is an insert-if-absent into
	 * key_info, which exactly one CPU wins; next_idx only says where to start. */
	if (s->dev)
		bpf_probe_read_kernel(&info->ifname, sizeof(info->ifname),
				      (void *)s->dev + DEV_NAME_OFF);
	u32 *next = next_idx.lookup(&zero);
	if (!next)
		return MAX_KEYS;
	u32 idx = *next;
	int claimed = 0;
#pragma unroll
	for (int i = 0; i < CLAIM_TRIES; i++) {
		if (idx >= MAX_KEYS)
			return MAX_KEYS;
		if (key_info.insert(&idx, info) == 0) {
			claimed = 1;
			break;
		}
		idx++;
	}
	if (!claimed)
		return MAX_KEYS; /* counted as overflow; the next drop tries again */
	__sync_fetch_and_add(next, 1);

	if (key_to_idx.insert(k, &idx) != 0) {
		/* Another CPU added the same key first (idx stays unused: user space
		 * merges rows by key), or the hash is full (overflow). */
		found = key_to_idx.lookup(k);
		return found ? *found : MAX_KEYS;
	}
	return idx;
}

#ifdef WITH_STACKS
static __always_inline void sample_stack(void *ctx, u32 idx)
{
	u32 zero = 0;
	struct scratch *sc = scratch.lookup(&zero);
	if (!sc)
		return;
	sc->sk.idx = idx;
	sc->sk.stackid = stacks.get_stackid(ctx, 0);
	if (sc->sk.stackid < 0)
		return;
	sc->one = 1;
	u64 *n = stack_counts.lookup(&sc->sk);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		stack_counts.update(&sc->sk, &sc->one);
}
#endif

#ifdef WITH_SAMPLES
/* Copy the headers of this (sampled) drop into slot pos of key idx on this CPU. */
static __always_inline void sample_packet(struct slot *s, void *skb, u32 idx, u64 packets)
{
	u32 zero = 0;
	struct scratch *sc = scratch.lookup(&zero);
	if (!sc)
		return;
	void *dev = (void *)s->dev;
	struct sample *p = &sc->smp;
	sc->skey.idx = idx;
	sc->skey.cpu = bpf_get_smp_processor_id();
	sc->skey.pos = packets <= STACK_FIRST ? packets - 1 : 4 + ((packets >> 12) & 3);
	p->ktime = bpf_ktime_get_ns();
	sc->head = NULL;
	sc->data = NULL;
	sc->len = sc->tail = 0;
	sc->mh = sc->nh = NO_HEADER;
	p->protocol = 0;
	p->dev_type = 0;
	bpf_probe_read_kernel(&sc->head, sizeof(sc->head), skb + SKB_HEAD_OFF);
	bpf_probe_read_kernel(&sc->data, sizeof(sc->data), skb + SKB_DATA_OFF);
	bpf_probe_read_kernel(&sc->len, sizeof(sc->len), skb + SKB_LEN_OFF);
	bpf_probe_read_kernel(&sc->tail, sizeof(sc->tail), skb + SKB_TAIL_OFF);
	bpf_probe_read_kernel(&sc->mh, sizeof(sc->mh), skb + SKB_MAC_OFF);
	bpf_probe_read_kernel(&sc->nh, sizeof(sc->nh), skb + SKB_NETWORK_OFF);
	bpf_probe_read_kernel(&p->protocol, sizeof(p->protocol), skb + SKB_PROTOCOL_OFF);
	if (dev)
		bpf_probe_read_kernel(&p->dev_type, sizeof(p->dev_type), dev + DEV_TYPE_OFF);
	/* A network header never set reads as 0 (alloc_skb leaves it so; only mac and
	 * transport start as ~0): then the bytes at head are headroom nobody wrote, stale
	 * kernel memory, so the copy starts at skb->data instead. */
	if (sc->nh == 0)
		sc->nh = NO_HEADER;
	u64 start = sc->nh != NO_HEADER ? (u64)sc->head + sc->nh : (u64)sc->data;
	/* skb->len counts from skb->data; the sample counts from the network header. */
	p->length = sc->len + (u32)((u64)sc->data - start);
	u64 avail = (u64)sc->head + sc->tail > start ? (u64)sc->head + sc->tail - start : 0;
	u32 n = avail < SAMPLE_BYTES ? avail : SAMPLE_BYTES;
	p->net_len = n;
	if (n > 0 && n <= SAMPLE_BYTES)
		bpf_probe_read_kernel(p->net, n, (void *)start);
	u32 m = 0;
	if (sc->mh != NO_HEADER && sc->nh != NO_HEADER && sc->mh < sc->nh)
		m = sc->nh - sc->mh;
	if (m > MAC_BYTES)
		m = MAC_BYTES;
	p->mac_len = m;
	if (m > 0 && m <= MAC_BYTES)
		bpf_probe_read_kernel(p->mac, m, sc->head + sc->mh);
	samples.update(&sc->skey, p);
}
#endif

/* 1 when this program runs on an interrupt stack (softirq, hardirq, NMI), 0 on
 * the task's own stack, given s->stack = task->stack. The address tested is the
 * context's: the tracepoint's argument array, which bpf_trace_run*() keeps in
 * its own frame on whatever kernel stack the drop runs on. Not the program's
 * frame pointer (r10): from 6.13 the JIT gives a tracing program whose stack
 * reaches 64 bytes a private per-CPU stack, and r10 then points there on every
 * drop. The context is a pointer to the verifier; stored in the map and loaded
 * back it is a number (droptop runs with CAP_PERFMON, which allows that). */
static __always_inline u32 on_irq_stack(struct slot *s, void *ctx)
{
	u64 fp;
	*(volatile u64 *)&s->fp = (u64)ctx;
	fp = *(volatile u64 *)&s->fp;
	return fp - s->stack >= THREAD_SIZE;
}

#ifdef HAVE_REASON
#define DROP_REASON(ctx) ((u64)(ctx)->args[2]) /* an enum, so zero-extended */
#else
#define DROP_REASON(ctx) 0
#endif
/* The receiving socket where the caller names it (6.11+); NULL otherwise. */
#ifdef HAVE_RX_SK
#define RX_SK(ctx) ((u64)(ctx)->args[3])
#else
#define RX_SK(ctx) 0
#endif

/* dev, sk and len of the dropped skb, by the attach type's means. */
#if defined(DROPTOP_BENCH_NO_SKB)
#define READ_SKB(skb, dev, sk, len)                                                          \
	do {                                                                                 \
		(void)(skb);                                                                 \
		dev = NULL;                                                                  \
		sk = 0;                                                                      \
		len = 0;                                                                     \
	} while (0)
#elif defined(TP_BTF)
/* Direct loads: the verifier checks each against the sk_buff BTF and the JIT emits
 * it inline with an exception-table entry (a bad pointer reads as 0, as a probe
 * read would), without a helper call. BPF asm because bcc's rewriter turns a C
 * dereference of anything derived from ctx back into bpf_probe_read(). */
#define READ_SKB(skb, dev, sk, len)                                                          \
	do {                                                                                 \
		asm volatile("%0 = *(u64 *)(%1 + " STR(SKB_DEV_OFF) ")" : "=r"(dev) : "r"(skb)); \
		asm volatile("%0 = *(u32 *)(%1 + " STR(SKB_LEN_OFF) ")" : "=r"(len) : "r"(skb)); \
		if (!sk)                                                                     \
			asm volatile("%0 = *(u64 *)(%1 + " STR(SKB_SK_OFF) ")"               \
				     : "=r"(sk)                                              \
				     : "r"(skb));                                            \
	} while (0)
#else
/* Probe reads into the burst cache's own span (a map value, not the stack): one
 * helper call covers dev, sk and len. */
#define READ_SKB(skb, dev, sk, len)                                                          \
	do {                                                                                 \
		bpf_probe_read_kernel(&s->span, sizeof(s->span), (skb) + SKB_DEV_OFF);       \
		dev = *(void **)&s->span[0];                                                 \
		len = *(u32 *)&s->span[SKB_LEN_OFF - SKB_DEV_OFF];                           \
		if (!sk)                                                                     \
			sk = *(u64 *)&s->span[SKB_SK_OFF - SKB_DEV_OFF];                     \
	} while (0)
#endif

/* The sampled path: a stack and the headers of this drop (the n-th of key s->idx on
 * this CPU). Rare, so it reads what it needs again rather than keep it live. The slot's
 * `sampled` count moves last, after the maps: user space re-reads the stack and sample
 * maps only when the sum over CPUs moved, and then finds everything it counts. */
static __always_inline void sampled(struct bpf_raw_tracepoint_args *ctx, struct slot *s, u64 n)
{
#if defined(WITH_STACKS) || defined(WITH_SAMPLES)
	u32 idx = s->idx;
	if (idx >= MAX_KEYS)
		return;
	if (n > STACK_FIRST) {
		/* A periodic sample: at most one per SAMPLE_GAP_NS per key and CPU, so a flood
		 * of one key pays for a few stack walks (~9 us each) a second, not hundreds. */
		struct counters *c = counts.lookup(&s->idx);
		if (!c)
			return;
		u64 t = bpf_ktime_get_ns();
		if (t - c->sampled_ns < SAMPLE_GAP_NS)
			return;
		c->sampled_ns = t;
	}
#ifdef WITH_STACKS
	sample_stack(ctx, idx);
#endif
#ifdef WITH_SAMPLES
	sample_packet(s, (void *)ctx->args[0], idx, n);
#endif
	asm volatile("" ::: "memory");
	s->sampled += 1;
#endif
}

/* Sampled: a stack walk costs ~9 us here (the flood's stack is ~40 frames deep). Each
 * key's first STACK_FIRST drops on a CPU get a stack (and their headers copied), so a
 * rare drop always has one, then every (STACK_EVERY_MASK + 1)th drop of it on that
 * CPU, at most one per SAMPLE_GAP_NS (see sampled()); n is this CPU's count of the key
 * including this drop. */
#define IS_SAMPLED(n) ((n) <= STACK_FIRST || ((n) & STACK_EVERY_MASK) == 0)

#ifdef BURST_COUNT
/* A compiler barrier: the slot's seq brackets the stores between (x86-64 keeps
 * stores in order, so user space sees them in this order too; see the reader). */
#define BARRIER() asm volatile("" ::: "memory")
#endif

/* Count one drop. Only the task (the one helper call before it) comes in: every
 * other value is read after the cache lookup and the jiffies read, which LLVM
 * compiles as calls (the verifier inlines them later), so of what the hit path
 * uses only ctx has to survive a call (LLVM keeps it in a stack slot). The
 * program's stack stays under 64 bytes: from there the JIT gives a tracing
 * program a private per-CPU stack, which every run pays for.
 *
 * BURST_COUNT (droptop's build on x86-64): a hit counts in the slot itself, s->n
 * and s->nb, which hold this CPU's total of key s->idx (counts[idx] when the slot
 * was resolved, plus every hit since); the miss path stores them back into
 * counts[idx] before the slot takes another key. A hit then touches one cache line
 * and makes no second map lookup (-6 ns a drop here, bench/README.md). User space
 * reads the slots as well and takes, per CPU and key, the larger of the two
 * (collector/burst.py): each value is this CPU's true count at some moment of the
 * read, so totals stay exact and never go back. The miss path brackets its change
 * of idx, n and nb with s->seq (odd while it runs), so a reader never pairs one
 * key's index with another's count. Without BURST_COUNT every drop adds to
 * counts[idx] directly: the build for CPUs that may reorder stores. */
static __always_inline int count_drop(struct bpf_raw_tracepoint_args *ctx, u64 task)
{
	u32 zero = 0;
	struct slot *s = cache.lookup(&zero);
	if (!s)
		return 0;
	u64 now = bpf_jiffies64();
	void *dev;
	u64 sk = RX_SK(ctx);
	u64 len;
	void *skb = (void *)ctx->args[0];
	READ_SKB(skb, dev, sk, len);
	struct counters *c;
	/* The context (the tracepoint's argument array) at the same address means the
	 * same kernel stack at the same depth, so the same interrupt-stack answer: a
	 * pointer compared, not converted (CAP_PERFMON allows that), on the hit path.
	 * The location and the reason are loaded only as they are compared, so the
	 * compares need no more registers than BPF has. */
	if (s->task == task && s->jiffies == now && (u64)ctx == s->ctxv && s->dev == (u64)dev &&
	    s->sk == sk && s->location == ctx->args[1] && s->reason == DROP_REASON(ctx)) {
#ifdef BURST_COUNT
		u64 n = s->n + 1;
		s->n = n;
		s->nb += len;
		if (IS_SAMPLED(n))
			sampled(ctx, s, n);
#else
		c = counts.lookup(&s->idx);
		if (!c)
			return 0;
		c->packets += 1;
		c->bytes += len;
		if (IS_SAMPLED(c->packets))
			sampled(ctx, s, c->packets);
#endif
		return 0;
	}
	/* A miss. Re-resolving at least once a jiffy picks up a changed comm or a
	 * device freed and reallocated at the same address. Everything goes into the
	 * slot before the first call, so only s and ctx live across the miss path's
	 * calls. */
	s->task = task;
	s->dev = (u64)dev;
	s->sk = sk;
	s->location = ctx->args[1];
	s->reason = DROP_REASON(ctx);
	s->jiffies = now;
	s->len = len;
#ifdef BURST_COUNT
	s->seq += 1;
	BARRIER();
	c = counts.lookup(&s->idx);
	if (c) { /* the previous key's count back into its counter (a no-op on the first miss) */
		c->packets = s->n;
		c->bytes = s->nb;
	}
#endif
	s->stack = 0;
	bpf_probe_read_kernel(&s->stack, sizeof(s->stack), TASK_OF_TAG(s->task) + TASK_STACK_OFF);
	s->irq = on_irq_stack(s, ctx);
	s->ctxv = s->fp;
	s->idx = lookup_or_add_key(s);
	c = counts.lookup(&s->idx);
#ifdef BURST_COUNT
	if (!c) {
		s->task = 0; /* cannot happen (idx <= MAX_KEYS); the next drop misses again */
		BARRIER();
		s->seq += 1;
		return 0;
	}
	s->n = c->packets + 1;
	s->nb = c->bytes + s->len;
	BARRIER();
	s->seq += 1;
	if (IS_SAMPLED(s->n))
		sampled(ctx, s, s->n);
#else
	if (!c)
		return 0;
	c->packets += 1;
	c->bytes += s->len;
	if (IS_SAMPLED(c->packets))
		sampled(ctx, s, c->packets);
#endif
	return 0;
}

/* Both entry points: the task first, the hot path's only real helper call. */
static __always_inline int on_kfree_skb(struct bpf_raw_tracepoint_args *ctx)
{
	u64 task = CURRENT_TASK_TAG();
#if defined(DROPTOP_BENCH_EMPTY)
	return 0;
#elif defined(DROPTOP_BENCH_EMPTY_TASK)
	return task == 1;
#else
	return count_drop(ctx, task);
#endif
}

#ifdef TP_BTF
/* Not a bcc probe name on purpose: bcc compiles it but leaves loading and
 * attaching to droptop's loader (BPF_PROG_LOAD with expected_attach_type
 * BPF_TRACE_RAW_TP and the BTF id of btf_trace_kfree_skb). A tp_btf context is
 * the tracepoint's arguments as u64s, the same layout as a raw tracepoint's. */
int droptop_kfree_skb(struct bpf_raw_tracepoint_args *ctx)
{
	return on_kfree_skb(ctx);
}
#else
RAW_TRACEPOINT_PROBE(kfree_skb)
{
	return on_kfree_skb(ctx);
}
#endif
