# Python PyTorch peer for bench/engine.ts: the same workloads on the same libtorch (Debian python3-torch),
# same thread count. Prints one JSON object of median milliseconds (tiny_op_us in microseconds).
import json, statistics, sys, time
import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 10
torch.set_num_threads(threads)
g = torch.Generator().manual_seed(0)

def median_ms(fn, n=repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)

out = {}
for n in (256, 1024, 2048):
    a = torch.randn(n, n, generator=g); b = torch.randn(n, n, generator=g)
    out[f"matmul_{n}"] = median_ms(lambda: a @ b, n=repeats if n < 2048 else max(3, repeats // 3))

x = torch.randn(8, 64, 32, 32, generator=g, requires_grad=True)
w = torch.randn(64, 64, 3, 3, generator=g, requires_grad=True)
def conv():
    x.grad = None; w.grad = None
    F.conv2d(x, w, padding=1).sum().backward()
out["conv_fwd_bwd"] = median_ms(conv)

q, k, v = (torch.randn(8, 256, 64, generator=g, requires_grad=True) for _ in range(3))
def attention():
    for t in (q, k, v): t.grad = None
    ((q @ k.transpose(-2, -1) / 8).softmax(-1) @ v).sum().backward()
out["attention_fwd_bwd"] = median_ms(attention)

mlp = [torch.randn(512, 512, generator=g) * 0.04, torch.zeros(512), torch.randn(512, 512, generator=g) * 0.04, torch.zeros(512),
       torch.randn(512, 10, generator=g) * 0.04, torch.zeros(10)]
for p in mlp: p.requires_grad_(True)
opt = torch.optim.AdamW(mlp, lr=1e-3)
xb = torch.randn(64, 512, generator=g); yb = torch.randint(0, 10, (64,), generator=g)
def mlp_step():
    opt.zero_grad()
    h = F.gelu(xb @ mlp[0] + mlp[1]); h = F.gelu(h @ mlp[2] + mlp[3])
    F.cross_entropy(h @ mlp[4] + mlp[5], yb).backward()
    opt.step()
out["mlp_step"] = median_ms(mlp_step)

s1 = torch.ones(1); s2 = torch.ones(1)
def tiny(n=20000):
    t0 = time.perf_counter()
    for _ in range(n): torch.add(s1, s2)
    return (time.perf_counter() - t0) / n * 1e6
tiny(2000)
out["tiny_op_us"] = statistics.median(tiny() for _ in range(5))
out["torch_version"] = torch.__version__
out["threads"] = torch.get_num_threads()
print(json.dumps(out))
