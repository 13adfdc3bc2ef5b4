# Python PyTorch peer for bench/train.ts: the MUMU model (SigLIP-style ViT -> SwiGLU connector -> Mistral-style LM
# with GQA + RoPE + RMSNorm -> non-causal adapter -> SD-style UNet2DConditionModel, and the VAE encoder the step
# encodes its targets with) and the stage-1 training step, in plain PyTorch 1.13 (no diffusers / transformers), on
# the same libtorch as mumu (Debian python3-torch). Module names are the checkpoint keys, so mumu's weights load
# with a strict load_state_dict; LoRA layers (rank r on the modules mumu wrapped) use PEFT's names.
#
# The math mirrors src/models/*.ts and src/nn/*.ts op for op (activations, norms and their eps, attention scaling,
# timestep embedding with flip_sin_to_cos, the DDPM noise coefficients), so the first-step loss on the batch bench/
# train.ts dumped must equal mumu's. Attention is composed (q k^T * scale, masked_fill, softmax, @ v): libtorch 1.13
# has no fused scaled_dot_product_attention, and mumu's binding composes the same ops there.
#
#   python3 mumu_train_peer.py DIR THREADS check|WARMUP STEPS PROFILE_STEPS
# DIR holds weights.safetensors, batch.safetensors, spec.json. Prints one JSON object as its last line: median wall and
# process-CPU ms per step, the first two steps' losses (check), forward / backward / update CPU ms (profile).
import json, math, re, statistics, struct, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

DIR, THREADS, STEPS, PROFILE = sys.argv[1], int(sys.argv[2]), int(sys.argv[4]), int(sys.argv[5])
CHECK = sys.argv[3] == 'check'  # 'check': first run two steps and report their losses; else the number of warm-up steps
WARMUP = 0 if CHECK else int(sys.argv[3])
torch.set_num_threads(THREADS)

ST_DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'F64': torch.float64, 'I64': torch.int64, 'I32': torch.int32, 'U8': torch.uint8, 'BOOL': torch.bool}


def load_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        b, e = info['data_offsets']
        dt = ST_DTYPES[info['dtype']]
        t = torch.frombuffer(bytearray(data[8 + n + b:8 + n + e]), dtype=dt) if e > b else torch.empty(0, dtype=dt)
        out[name] = t.reshape(info['shape'])
    return out


# ---- shared pieces (src/nn) ----

def split_heads(x, heads):  # (B, T, heads * d) -> (B, heads, T, d)
    B, T = x.shape[:2]
    return x.view(B, T, heads, -1).transpose(1, 2)


def merge_heads(x):  # (B, heads, T, d) -> (B, T, heads * d)
    B, H, T, d = x.shape
    return x.transpose(1, 2).reshape(B, T, H * d)


def repeat_kv(x, n):  # (B, kvHeads, T, d) -> (B, kvHeads * n, T, d)
    if n == 1:
        return x
    B, H, T, d = x.shape
    return x.unsqueeze(2).expand(B, H, n, T, d).reshape(B, H * n, T, d)


def key_mask_4d(key_mask, Tq, causal):
    # (B, Tk) 1 = token -> bool (B, 1, Tq|1, Tk), true = may attend; rows that may attend to nothing see every key
    B, Tk = key_mask.shape
    mask = key_mask.to(torch.bool).view(B, 1, 1, Tk)
    if causal:
        mask = mask.logical_and(torch.ones(Tq, Tk, dtype=torch.bool).tril(Tk - Tq))
    return mask.logical_or(mask.sum(-1, keepdim=True).eq(0))


def attend(q, k, v, mask=None):  # (B, heads, T, d); mask bool broadcastable to (B, heads, Tq, Tk)
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), float('-inf'))
    return torch.matmul(torch.softmax(scores, -1), v)


def rms_norm(x, weight, eps):
    return x * x.square().mean(-1, keepdim=True).add(eps).rsqrt() * weight


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


ACT = {'silu': F.silu, 'swish': F.silu, 'gelu': F.gelu, 'gelu_pytorch_tanh': lambda x: F.gelu(x, approximate='tanh'),
       'gelu_new': lambda x: F.gelu(x, approximate='tanh'), 'quick_gelu': lambda x: x * torch.sigmoid(x * 1.702), 'relu': F.relu}


class SwiGLU(nn.Module):
    def __init__(self, dim, inter, out, act):
        super().__init__()
        self.gate_proj = nn.Linear(dim, inter, bias=False)
        self.up_proj = nn.Linear(dim, inter, bias=False)
        self.down_proj = nn.Linear(inter, out, bias=False)
        self.act = ACT[act]

    def forward(self, x):
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class Attention(nn.Module):  # diffusers' names: to_q, to_k, to_v, to_out.0
    def __init__(self, query_dim, heads, dim_head, cross_dim=None, bias=False):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=bias)
        self.to_k = nn.Linear(cross_dim or query_dim, inner, bias=bias)
        self.to_v = nn.Linear(cross_dim or query_dim, inner, bias=bias)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Dropout(0.0)])

    def forward(self, x, context=None, mask=None):
        ctx = x if context is None else context
        q, k, v = split_heads(self.to_q(x), self.heads), split_heads(self.to_k(ctx), self.heads), split_heads(self.to_v(ctx), self.heads)
        return self.to_out[1](self.to_out[0](merge_heads(attend(q, k, v, mask))))


class GEGLU(nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        hidden, gate = self.proj(x).chunk(2, -1)
        return hidden * F.gelu(gate)


class GELUProj(nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x):
        return F.gelu(self.proj(x))


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4, act='geglu'):
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner) if act == 'geglu' else GELUProj(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim)])

    def forward(self, x):
        return self.net[2](self.net[1](self.net[0](x)))


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb=None, groups=32, eps=1e-6):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout) if temb else None
        self.norm2 = nn.GroupNorm(groups, cout, eps)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None and temb is not None:
            h = h + self.time_emb_proj(F.silu(temb)).unsqueeze(-1).unsqueeze(-1)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        skip = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        return skip + h


class Downsample2D(nn.Module):
    def __init__(self, ch, padding):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=padding)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)) if self.padding == 0 else x)


class Upsample2D(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x, size=None):
        return self.conv(F.interpolate(x, size=size, mode='nearest') if size else F.interpolate(x, scale_factor=2.0, mode='nearest'))


# ---- VLM (src/models/vit.ts, vlm.ts) ----

class EncoderAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.k_proj, self.v_proj, self.q_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        q, k, v = split_heads(self.q_proj(x), self.heads), split_heads(self.k_proj(x), self.heads), split_heads(self.v_proj(x), self.heads)
        return self.out_proj(merge_heads(attend(q, k, v)))


class MLP(nn.Module):
    def __init__(self, dim, inter, act):
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(dim, inter), nn.Linear(inter, dim), ACT[act]

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(c['hidden_size'], c['layer_norm_eps'])
        self.self_attn = EncoderAttention(c['hidden_size'], c['num_attention_heads'])
        self.layer_norm2 = nn.LayerNorm(c['hidden_size'], c['layer_norm_eps'])
        self.mlp = MLP(c['hidden_size'], c['intermediate_size'], c['hidden_act'])

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.patch_embedding = nn.Conv2d(c['num_channels'], c['hidden_size'], c['patch_size'], stride=c['patch_size'])
        self.position_embedding = nn.Embedding((c['image_size'] // c['patch_size']) ** 2, c['hidden_size'])

    def forward(self, pixels):
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)  # (N, h*w, D)
        return patches + self.position_embedding(torch.arange(0, patches.shape[1], 1))


class VisionEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(c) for _ in range(c['num_hidden_layers'])])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class VisionTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = VisionEmbeddings(c)
        self.encoder = VisionEncoder(c)
        self.post_layernorm = nn.LayerNorm(c['hidden_size'], c['layer_norm_eps'])

    def forward(self, pixels):
        return self.post_layernorm(self.encoder(self.embeddings(pixels)))


def rotary_tables(T, d, theta):
    inv_freq = torch.arange(0, d, 2, dtype=torch.float32).mul(-math.log(theta) / d).exp()
    freqs = torch.arange(0, T, 1, dtype=torch.float32).unsqueeze(1) * inv_freq.unsqueeze(0)  # (T, d/2)
    emb = torch.cat([freqs, freqs], -1)
    return emb.cos(), emb.sin()


def apply_rotary(x, cos, sin):
    d = x.shape[-1]
    x1, x2 = x.narrow(-1, 0, d // 2), x.narrow(-1, d // 2, d // 2)
    return x * cos + torch.cat([x2.neg(), x1], -1) * sin


class MistralAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c.get('head_dim') or c['hidden_size'] // c['num_attention_heads']
        self.heads, self.kv_heads = c['num_attention_heads'], c['num_key_value_heads']
        self.q_proj = nn.Linear(c['hidden_size'], self.heads * d, bias=False)
        self.k_proj = nn.Linear(c['hidden_size'], self.kv_heads * d, bias=False)
        self.v_proj = nn.Linear(c['hidden_size'], self.kv_heads * d, bias=False)
        self.o_proj = nn.Linear(self.heads * d, c['hidden_size'], bias=False)

    def forward(self, x, cos, sin, mask):
        q = apply_rotary(split_heads(self.q_proj(x), self.heads), cos, sin)
        k = apply_rotary(split_heads(self.k_proj(x), self.kv_heads), cos, sin)
        v = split_heads(self.v_proj(x), self.kv_heads)
        rep = self.heads // self.kv_heads
        return self.o_proj(merge_heads(attend(q, repeat_kv(k, rep), repeat_kv(v, rep), mask)))


class MistralDecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = MistralAttention(c)
        self.mlp = SwiGLU(c['hidden_size'], c['intermediate_size'], c['hidden_size'], c['hidden_act'])
        self.input_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.post_attention_layernorm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class MistralModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.layers = nn.ModuleList([MistralDecoderLayer(c) for _ in range(c['num_hidden_layers'])])
        self.norm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])

    def forward(self, embeds, key_mask):
        T = embeds.shape[1]
        cos, sin = rotary_tables(T, self.c.get('head_dim') or self.c['hidden_size'] // self.c['num_attention_heads'], self.c['rope_theta'])
        mask = key_mask_4d(key_mask, T, causal=True) if key_mask is not None else torch.ones(T, T, dtype=torch.bool).tril()
        h = embeds
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
        return self.norm(h)


class Connector(nn.Module):
    def __init__(self, c):
        super().__init__()
        if c['use_perceiver']:
            raise SystemExit('mumu_train_peer: use_perceiver=true is not written here (MUMU removes the perceiver)')
        t = c['text_config']
        self.modality_projection = SwiGLU(c['vision_config']['hidden_size'], t['intermediate_size'], t['hidden_size'], t['hidden_act'])

    def forward(self, x):
        return self.modality_projection(x)


class Idefics2Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.vision_model = VisionTransformer(c['vision_config'])
        self.connector = Connector(c)
        self.text_model = MistralModel(c['text_config'])


class VisionLanguageModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Idefics2Model(c)
        self.lm_head = nn.Linear(c['text_config']['hidden_size'], c['text_config']['vocab_size'], bias=False)
        v = c['vision_config']
        self.tokens_per_image = (v['image_size'] // v['patch_size']) ** 2

    def forward(self, ids, pixels, key_mask):  # -> last hidden states (B, T, D)
        embeds = self.model.text_model.embed_tokens(ids)
        is_image = ids.eq(self.c['image_token_id'])
        n = 0 if pixels is None else pixels.shape[0]
        if is_image.sum().item() != n * self.tokens_per_image:
            raise ValueError('image placeholders do not match the images')
        if n:
            features = self.model.connector(self.model.vision_model(pixels))  # (N, tokens, D)
            embeds = embeds.masked_scatter(is_image.unsqueeze(-1).expand(embeds.shape), features)
        return self.model.text_model(embeds, key_mask)


# ---- adapter (src/models/adapter.ts) ----

class AdapterBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, heads = c['hidden_size'], c['num_attention_heads']
        self.norm1 = nn.LayerNorm(h, c['norm_eps'])
        self.attn1 = Attention(h, heads, h // heads)
        self.norm2 = nn.LayerNorm(h, c['norm_eps'])
        self.ff = FeedForward(h, c['ff_mult'], 'gelu')

    def forward(self, x, mask):
        x = x + self.attn1(self.norm1(x), None, mask)
        return x + self.ff(self.norm2(x))


class Adapter(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.proj_in = nn.Linear(c['in_dim'], c['hidden_size'])
        self.transformer_blocks = nn.ModuleList([AdapterBlock(c) for _ in range(c['num_layers'])])
        self.norm_out = nn.LayerNorm(c['hidden_size'], c['norm_eps'])
        self.proj_out = nn.Linear(c['hidden_size'], c['out_dim'])

    def forward(self, hidden, key_mask):
        mask = key_mask_4d(key_mask, hidden.shape[1], causal=False) if key_mask is not None else None
        h = self.proj_in(hidden)
        for block in self.transformer_blocks:
            h = block(h, mask)
        return self.proj_out(self.norm_out(h))


# ---- UNet (src/models/unet.ts) ----

def timestep_embedding(t, dim, flip_sin_to_cos, shift, max_period=10000):
    half = dim // 2
    exponent = torch.arange(0, half, 1, dtype=torch.float32).mul(-math.log(max_period) / (half - shift))
    args = t.float().unsqueeze(1) * exponent.exp().unsqueeze(0) * 1.0  # (N, half)
    emb = torch.cat([args.cos(), args.sin()], -1) if flip_sin_to_cos else torch.cat([args.sin(), args.cos()], -1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class TimestepEmbedding(nn.Module):
    def __init__(self, cin, dim):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(cin, dim), nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class AttentionPooling(nn.Module):  # diffusers / DeepFloyd IF, with mumu's key mask (src/nn/embeddings.ts)
    def __init__(self, heads, dim):
        super().__init__()
        self.heads = heads
        self.positional_embedding = nn.Parameter(torch.zeros(1, dim))
        self.k_proj, self.q_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x, key_mask):
        B = x.shape[0]
        m = key_mask.to(x.dtype).unsqueeze(-1)
        cls = (x * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1) + self.positional_embedding
        seq = torch.cat([cls, x], 1)
        q = split_heads(self.q_proj(cls), self.heads)
        k, v = split_heads(self.k_proj(seq), self.heads), split_heads(self.v_proj(seq), self.heads)
        keys = torch.cat([torch.ones(B, 1), key_mask], 1).bool()
        return merge_heads(attend(q, k, v, keys[:, None, None, :])).reshape(B, -1)


class TextTimeEmbedding(nn.Module):  # UNet addition_embed_type 'text'
    def __init__(self, enc, temb, heads):
        super().__init__()
        self.norm1, self.pool, self.proj, self.norm2 = nn.LayerNorm(enc), AttentionPooling(heads, enc), nn.Linear(enc, temb), nn.LayerNorm(temb)

    def forward(self, states, key_mask):
        return self.norm2(self.proj(self.pool(self.norm1(states), key_mask)))


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, cross_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, dim // heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, dim // heads, cross_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x, context, mask):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context, mask)
        return x + self.ff(self.norm3(x))


class Transformer2DModel(nn.Module):
    def __init__(self, ch, heads, depth, c):
        super().__init__()
        lin = c['use_linear_projection']
        self.norm = nn.GroupNorm(c['norm_num_groups'], ch, 1e-6)
        self.proj_in = nn.Linear(ch, ch) if lin else nn.Conv2d(ch, ch, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(ch, heads, c['cross_attention_dim']) for _ in range(depth)])
        self.proj_out = nn.Linear(ch, ch) if lin else nn.Conv2d(ch, ch, 1)
        self.lin = lin

    def forward(self, x, context, mask):
        B, C, H, W = x.shape
        h = self.norm(x)
        to_seq = lambda t: t.permute(0, 2, 3, 1).reshape(B, H * W, C)
        to_map = lambda t: t.reshape(B, H, W, C).permute(0, 3, 1, 2)
        h = self.proj_in(to_seq(h)) if self.lin else to_seq(self.proj_in(h))
        for block in self.transformer_blocks:
            h = block(h, context, mask)
        h = to_map(self.proj_out(h)) if self.lin else self.proj_out(to_map(h))
        return h + x


class DownBlock(nn.Module):
    def __init__(self, kind, cin, cout, heads, depth, temb, down, c):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, temb, c['norm_num_groups'], c['norm_eps']) for i in range(c['layers_per_block'])])
        self.attentions = nn.ModuleList([Transformer2DModel(cout, heads, depth, c) for _ in self.resnets] if kind == 'CrossAttnDownBlock2D' else [])
        self.downsamplers = nn.ModuleList([Downsample2D(cout, 1)] if down else [])

    def forward(self, h, emb, context, mask):
        skips = []
        for i, resnet in enumerate(self.resnets):
            h = resnet(h, emb)
            if len(self.attentions):
                h = self.attentions[i](h, context, mask)
            skips.append(h)
        for d in self.downsamplers:
            h = d(h)
            skips.append(h)
        return h, skips


class UpBlock(nn.Module):
    def __init__(self, kind, cin, prev, cout, heads, depth, temb, up, c):
        super().__init__()
        n = c['layers_per_block'] + 1
        self.resnets = nn.ModuleList([ResnetBlock2D((prev if i == 0 else cout) + (cin if i == n - 1 else cout), cout, temb, c['norm_num_groups'], c['norm_eps']) for i in range(n)])
        self.attentions = nn.ModuleList([Transformer2DModel(cout, heads, depth, c) for _ in self.resnets] if kind == 'CrossAttnUpBlock2D' else [])
        self.upsamplers = nn.ModuleList([Upsample2D(cout)] if up else [])

    def forward(self, h, skips, emb, context, mask, size):
        for i, resnet in enumerate(self.resnets):
            h = resnet(torch.cat([h, skips.pop()], 1), emb)
            if len(self.attentions):
                h = self.attentions[i](h, context, mask)
        for u in self.upsamplers:
            h = u(h, size)
        return h


class MidBlock(nn.Module):
    def __init__(self, ch, heads, depth, temb, c):
        super().__init__()
        self.attentions = nn.ModuleList([Transformer2DModel(ch, heads, depth, c)])
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, temb, c['norm_num_groups'], c['norm_eps']) for _ in range(2)])

    def forward(self, h, emb, context, mask):
        h = self.resnets[0](h, emb)
        for i, a in enumerate(self.attentions):
            h = self.resnets[i + 1](a(h, context, mask), emb)
        return h


def per_block(v, n):
    return list(v) if isinstance(v, list) else [v] * n


class UNet2DConditionModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        if c.get('addition_embed_type') not in (None, 'text') or c.get('center_input_sample') or c.get('mid_block_scale_factor', 1) != 1:
            raise SystemExit('mumu_train_peer: this UNet config is not written here')
        self.c = c
        ch, n = c['block_out_channels'], len(c['block_out_channels'])
        temb = ch[0] * 4
        heads = per_block(c['num_attention_heads'] or c['attention_head_dim'], n)
        depth = per_block(c['transformer_layers_per_block'], n)
        self.conv_in = nn.Conv2d(c['in_channels'], ch[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(ch[0], temb)
        if c.get('addition_embed_type') == 'text':
            self.add_embedding = TextTimeEmbedding(c['cross_attention_dim'], temb, c['addition_embed_type_num_heads'])
        self.down_blocks = nn.ModuleList([DownBlock(t, ch[0] if i == 0 else ch[i - 1], ch[i], heads[i], depth[i], temb, i < n - 1, c) for i, t in enumerate(c['down_block_types'])])
        self.mid_block = MidBlock(ch[-1], heads[-1], depth[-1], temb, c)
        rc, rh, rd = ch[::-1], heads[::-1], depth[::-1]
        self.up_blocks = nn.ModuleList([UpBlock(t, rc[min(i + 1, n - 1)], rc[max(i - 1, 0)], rc[i], rh[i], rd[i], temb, i < n - 1, c) for i, t in enumerate(c['up_block_types'])])
        self.conv_norm_out = nn.GroupNorm(c['norm_num_groups'], ch[0], c['norm_eps'])
        self.conv_out = nn.Conv2d(ch[0], c['out_channels'], 3, padding=1)

    def forward(self, sample, t, context, key_mask):
        c = self.c
        emb = self.time_embedding(timestep_embedding(t, c['block_out_channels'][0], c['flip_sin_to_cos'], c['freq_shift']))
        if c.get('addition_embed_type') == 'text':
            emb = emb + self.add_embedding(context, key_mask)
        mask = key_mask_4d(key_mask, 1, causal=False) if key_mask is not None else None
        h = self.conv_in(sample)
        skips = [h]
        for block in self.down_blocks:
            h, s = block(h, emb, context, mask)
            skips.extend(s)
        h = self.mid_block(h, emb, context, mask)
        for block in self.up_blocks:
            k = len(block.resnets)
            mine, skips = skips[-k:], skips[:-k]
            size = (skips[-1].shape[2], skips[-1].shape[3]) if skips else None
            h = block(h, mine, emb, context, mask, size)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


# ---- VAE (src/models/vae.ts) ----

class SpatialAttention(Attention):
    def __init__(self, ch, groups):
        super().__init__(ch, 1, ch, bias=True)
        self.group_norm = nn.GroupNorm(groups, ch, 1e-6)

    def forward_spatial(self, x):
        B, C, H, W = x.shape
        seq = self.group_norm(x).view(B, C, H * W).transpose(1, 2)
        return self.forward(seq).transpose(1, 2).reshape(B, C, H, W) + x


class VaeMidBlock(nn.Module):
    def __init__(self, ch, groups, attn):
        super().__init__()
        self.attentions = nn.ModuleList([SpatialAttention(ch, groups)] if attn else [])
        self.resnets = nn.ModuleList([ResnetBlock2D(ch, ch, None, groups), ResnetBlock2D(ch, ch, None, groups)])

    def forward(self, x):
        h = self.resnets[0](x)
        if len(self.attentions):
            h = self.attentions[0].forward_spatial(h)
        return self.resnets[1](h)


class VaeBlock(nn.Module):
    def __init__(self, cin, cout, layers, groups, down=None, up=None):  # an encoder block (down) or a decoder block (up)
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, None, groups) for i in range(layers)])
        if up is None:
            self.downsamplers = nn.ModuleList([Downsample2D(cout, 0)] if down else [])
        else:
            self.upsamplers = nn.ModuleList([Upsample2D(cout)] if up else [])

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        for d in getattr(self, 'downsamplers', []):
            x = d(x)
        return x


class VaeEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        ch, g = c['block_out_channels'], c['norm_num_groups']
        self.conv_in = nn.Conv2d(c['in_channels'], ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList([VaeBlock(ch[0] if i == 0 else ch[i - 1], o, c['layers_per_block'], g, down=i < len(ch) - 1) for i, o in enumerate(ch)])
        self.mid_block = VaeMidBlock(ch[-1], g, c['mid_block_add_attention'])
        self.conv_norm_out = nn.GroupNorm(g, ch[-1], 1e-6)
        self.conv_out = nn.Conv2d(ch[-1], 2 * c['latent_channels'], 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for b in self.down_blocks:
            h = b(h)
        h = self.mid_block(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class VaeDecoder(nn.Module):  # not run by the step; here so the VAE's weights load strictly
    def __init__(self, c):
        super().__init__()
        rev, g = c['block_out_channels'][::-1], c['norm_num_groups']
        self.conv_in = nn.Conv2d(c['latent_channels'], rev[0], 3, padding=1)
        self.mid_block = VaeMidBlock(rev[0], g, c['mid_block_add_attention'])
        self.up_blocks = nn.ModuleList([VaeBlock(rev[0] if i == 0 else rev[i - 1], o, c['layers_per_block'] + 1, g, up=i < len(rev) - 1) for i, o in enumerate(rev)])
        self.conv_norm_out = nn.GroupNorm(g, rev[-1], 1e-6)
        self.conv_out = nn.Conv2d(rev[-1], c['out_channels'], 3, padding=1)


class AutoencoderKL(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        L = c['latent_channels']
        self.encoder = VaeEncoder(c)
        self.decoder = VaeDecoder(c)
        self.quant_conv = nn.Conv2d(2 * L, 2 * L, 1) if c['use_quant_conv'] else None
        self.post_quant_conv = nn.Conv2d(L, L, 1) if c['use_post_quant_conv'] else None

    def encode_sample_scaled(self, x, gens):  # posterior sample (one generator per item), scaled for the diffusion model
        moments = self.encoder(x)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        mean, logvar = moments.chunk(2, 1)
        std = logvar.clamp(-30, 20).mul(0.5).exp()
        z = mean + std * torch.cat([torch.randn((1,) + tuple(mean.shape[1:]), generator=g, dtype=mean.dtype) for g in gens])
        return (z - (self.c['shift_factor'] or 0)) * self.c['scaling_factor']


class MumuModel(nn.Module):
    def __init__(self, configs):
        super().__init__()
        self.vlm = VisionLanguageModel(configs['vlm'])
        self.adapter = Adapter(configs['adapter'])
        self.unet = UNet2DConditionModel(configs['unet'])
        self.vae = AutoencoderKL(configs['vae'])


# ---- LoRA (PEFT names: lora_A, lora_B; base weights keep their keys) ----

class LoraLinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.weight, self.bias = base.weight, base.bias
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.lora_dropout = nn.Identity()
        self.scaling = alpha / r

    def forward(self, x):
        return F.linear(x, self.weight, self.bias) + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


def inject_lora(root, match, r, alpha):
    for name, m in list(root.named_modules()):
        if isinstance(m, nn.Linear) and name and match(name):
            parent_name, _, key = name.rpartition('.')
            parent = root.get_submodule(parent_name) if parent_name else root
            wrapped = LoraLinear(m, r, alpha)
            if isinstance(parent, nn.ModuleList):
                parent[int(key)] = wrapped
            else:
                setattr(parent, key, wrapped)
    root.requires_grad_(False)
    for m in root.modules():
        if isinstance(m, LoraLinear):
            m.lora_A.requires_grad_(True)
            m.lora_B.requires_grad_(True)


def apply_training(model, t):  # MumuModel.applyTraining (src/models/mumu.ts)
    model.requires_grad_(False)
    parts = ['vision_model', 'connector', 'text_model']
    lora_parts = [p for p in parts if t[p] == 'lora']
    if lora_parts:
        rx = re.compile(r'model\.(?:%s)\..*\.(?:%s)' % ('|'.join(lora_parts), '|'.join(re.escape(x) for x in t['vlm_lora_target_modules'])))
        inject_lora(model.vlm, lambda n: rx.fullmatch(n) is not None, t['lora_r'], t['lora_alpha'])
    for p in parts:
        if t[p] == 'full':
            getattr(model.vlm.model, p).requires_grad_(True)
    if t['unet'] == 'lora':
        targets = t['unet_lora_target_modules']
        inject_lora(model.unet, lambda n: any(n == x or n.endswith('.' + x) for x in targets), t['lora_r'], t['lora_alpha'])
    if t['unet'] == 'full':
        model.unet.requires_grad_(True)
    if t['adapter'] == 'full':
        model.adapter.requires_grad_(True)
    if t['vae'] == 'full':
        model.vae.requires_grad_(True)
    if t.get('lm_head') == 'full':
        model.vlm.lm_head.requires_grad_(True)


# ---- the run ----

spec = json.load(open(f'{DIR}/spec.json'))
if spec['train'].get('lora_dropout', 0) != 0:
    raise SystemExit('mumu_train_peer: lora_dropout > 0 is not written here')
model = MumuModel(spec['configs'])
apply_training(model, spec['train'])
weights = load_safetensors(f'{DIR}/weights.safetensors')
model.load_state_dict(weights, strict=True)  # every key and shape must match mumu's
model.train()
trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
if sorted(n for n, _ in trainable) != sorted(spec['trainable']):
    raise SystemExit('mumu_train_peer: trainable parameters differ from mumu\'s')
groups = [{'params': [], 'lr': g['lr'], 'weight_decay': g['weight_decay']} for g in spec['groups']]
rxs = [re.compile(g['match']) for g in spec['groups']]
for n, p in trainable:
    groups[next(i for i, rx in enumerate(rxs) if rx.search(n))]['params'].append(p)
opt = torch.optim.AdamW(groups, betas=tuple(spec['betas']), eps=spec['eps'])
params = [p for _, p in trainable]
clip = spec['clip_grad_norm'] if spec['clip_grad_norm'] is not None else float('inf')

batch = load_safetensors(f'{DIR}/batch.safetensors')
images, ids, key_mask = batch['images'], batch['input_ids'], batch['attention_mask']
pixels = batch.get('pixel_values')
item_seeds = batch['item_seeds'].tolist()  # each item's own generator (src/train/draws.ts)

# DDPM noise coefficients in float64, as src/diffusion/schedule.ts builds them (scaled_linear, optionally rescaled to
# zero terminal SNR, Lin et al. 2023 Algorithm 1)
sc = spec['schedule']
assert sc['beta_schedule'] == 'scaled_linear'
n_t, a, b = sc['num_train_timesteps'], math.sqrt(sc['beta_start']), math.sqrt(sc['beta_end'])
alphas_cumprod, p = [], 1.0
for i in range(n_t):
    s_ = a + ((b - a) * i) / (n_t - 1)
    p *= 1 - s_ * s_
    alphas_cumprod.append(p)
if sc.get('rescale_betas_zero_snr'):
    sq = [math.sqrt(x) for x in alphas_cumprod]
    s0, sT = sq[0], sq[-1]
    ab = [((v - sT) * s0 / (s0 - sT)) ** 2 for v in sq]
    betas = [1 - (ab[0] if i == 0 else ab[i] / ab[i - 1]) for i in range(n_t)]
    alphas_cumprod, p = [], 1.0
    for bt in betas:
        p *= 1 - bt
        alphas_cumprod.append(p)
sqrt_ab = [math.sqrt(x) for x in alphas_cumprod]
sqrt_1mab = [math.sqrt(1 - x) for x in alphas_cumprod]
PREDICTION, SNR_GAMMA = spec.get('prediction_type', 'epsilon'), spec.get('snr_gamma')


def add_noise(x0, noise, t):
    idx = t.tolist()
    shape = (len(idx),) + (1,) * (x0.dim() - 1)
    c1 = torch.tensor([sqrt_ab[i] for i in idx], dtype=torch.float32).view(shape)
    c2 = torch.tensor([sqrt_1mab[i] for i in idx], dtype=torch.float32).view(shape)
    return x0 * c1 + noise * c2


draws = {}


def loss_fn():  # runner.loss for the diffusion stages (src/train/stages.ts)
    gens = [torch.Generator().manual_seed(s) for s in item_seeds]
    with torch.no_grad():
        x0 = model.vae.encode_sample_scaled(images, gens)
    noise = torch.cat([torch.randn((1,) + tuple(x0.shape[1:]), generator=g) for g in gens])
    t = torch.cat([torch.randint(0, n_t, (1,), generator=g) for g in gens])
    if not draws:
        draws.update(noise=noise, t=t)
    xt = add_noise(x0, noise, t)
    context = model.adapter(model.vlm(ids, pixels, key_mask), key_mask)
    pred = model.unet(xt, t, context, key_mask)
    idx = t.tolist()
    shape = (len(idx),) + (1,) * (x0.dim() - 1)
    coef = lambda vals: torch.tensor([vals[i] for i in idx], dtype=torch.float32).view(shape)
    target = noise if PREDICTION == 'epsilon' else noise * coef(sqrt_ab) - x0 * coef(sqrt_1mab)
    err = (pred - target).square()
    if SNR_GAMMA:  # Min-SNR-gamma (src/diffusion/noise.ts minSnrWeights)
        snr = [x / (1 - x) if x < 1 else float('inf') for x in alphas_cumprod]
        w = [min(r, SNR_GAMMA) / (r + 1) if PREDICTION == 'v_prediction' else (min(r, SNR_GAMMA) / r if r > 0 else 1.0) for r in snr]
        err = err * coef(w)
    return err.mean()


def step():
    loss = loss_fn()
    loss.backward()
    value = loss.item()
    norm = torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return value, float(norm)


def timed(fn):  # wall ms, process CPU ms (all threads)
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - w0) * 1000, (time.process_time() - c0) * 1000


out = {}
if CHECK:  # the equivalence check; these two steps are the warm-up
    l1, g1 = step()
    l2, _ = step()
    out['first'] = {'loss': l1, 'grad_norm': g1, 'loss2': l2}
    out['draws_match'] = torch.equal(draws['noise'], batch['noise']) and torch.equal(draws['t'], batch['timesteps'])
    if not out['draws_match']:
        print('mumu_train_peer: warning: this torch draws different noise from the same seeds than mumu', file=sys.stderr)
else:
    for _ in range(WARMUP):
        step()
wall, cpu = zip(*(timed(step) for _ in range(STEPS)))
out.update(wall_ms=statistics.median(wall), cpu_ms=statistics.median(cpu), threads=torch.get_num_threads(), torch_version=torch.__version__)
if CHECK:
    # forward FLOPs of the step as PyTorch's profiler counts them (matmul, conv, bmm, ... : the ops it has formulas
    # for), and this machine's matmul GFLOP/s (1024 x 1024 fp32, best of 5) for the share the step reaches
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        with torch.no_grad():
            loss_fn()
    out['forward_flops'] = sum(e.flops for e in prof.key_averages())
    A, Bm = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.mm(A, Bm)
    best = float('inf')
    for _ in range(5):
        w0 = time.perf_counter()
        for _ in range(10):
            torch.mm(A, Bm)
        best = min(best, (time.perf_counter() - w0) / 10)
    out['matmul_gflops'] = 2 * 1024 ** 3 / best / 1e9
if PROFILE:
    prof = {'forward': [], 'backward': [], 'update': []}
    for _ in range(PROFILE):
        box = {}
        prof['forward'].append(timed(lambda: box.update(loss=loss_fn()) or box['loss'].item())[1])
        prof['backward'].append(timed(lambda: box['loss'].backward())[1])

        def update():
            torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
        prof['update'].append(timed(update)[1])
    out['profile'] = {k: statistics.median(v) for k, v in prof.items()}
print(json.dumps(out))
