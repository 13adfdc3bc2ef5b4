# Python peer for bench/ddp.ts: one rank of the gradient all-reduce in torch.distributed with Gloo, on the same
# libtorch as mumu (Debian python3-torch). The gradients (shapes from bench/ddp.ts, filled with rank + 1) are packed
# the way mumu's binding packs them (native/src/distributed.cc; DDP's flat buckets): in list order, up to BUCKET
# bytes each, a lone contiguous tensor reduced in place, else torch.cat'ed; every bucket's all_reduce is issued
# asynchronously, then each is waited for, divided by the world size (Gloo has no AVG) and copied back.
# BUCKET 0: one all_reduce per tensor.
#
#   RANK=r WORLD_SIZE=2 MASTER_ADDR=... MASTER_PORT=... python3 ddp_peer.py SHAPES.json BUCKET WARMUP ITERS
# Prints one JSON object: the ITERS timed all-reduces (wall and process-CPU ms) and whether every element came out as 1.5.
import json, sys, time
from datetime import timedelta
import torch
import torch.distributed as dist

shapes_file, cap, warmup, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
dist.init_process_group('gloo', timeout=timedelta(seconds=60))  # env:// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
rank, world = dist.get_rank(), dist.get_world_size()
grads = [torch.full(s, float(rank + 1)) for s in json.load(open(shapes_file))]

buckets, fill = [], None
for g in grads:
    nb = g.numel() * g.element_size()
    if not buckets or cap == 0 or fill + nb > cap:
        buckets.append([])
        fill = 0
    buckets[-1].append(g)
    fill += nb


def all_reduce_avg():
    flats, works = [], []
    for b in buckets:
        flat = b[0].view(-1) if len(b) == 1 and b[0].is_contiguous() else torch.cat([t.reshape(-1) for t in b])
        flats.append(flat)
        works.append(dist.all_reduce(flat, async_op=True))
    for b, flat, work in zip(buckets, flats, works):
        work.wait()
        flat.div_(world)
        if len(b) > 1 or not b[0].is_contiguous():
            offset = 0
            for t in b:
                t.copy_(flat[offset:offset + t.numel()].view_as(t))
                offset += t.numel()


ms, cpu_ms = [], []
with torch.no_grad():
    for i in range(warmup + iters):
        t0, c0 = time.perf_counter(), time.process_time()  # process CPU time: every thread, Gloo's included
        all_reduce_avg()
        if i >= warmup:
            ms.append((time.perf_counter() - t0) * 1000)
            cpu_ms.append((time.process_time() - c0) * 1000)
ok = all(bool((g - 1.5).abs().max() == 0) for g in grads)
dist.destroy_process_group()
print(json.dumps({'ms': ms, 'cpu_ms': cpu_ms, 'ok': ok}))
