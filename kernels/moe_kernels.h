// epsim-bench: the project's own MoE kernels (activation, permute, combine, gate top-k).
#pragma once

#include "common.h"

namespace epsim::bench {

// A[r, j] = silu(H[r, j]) * H[r, inter + j] for j < inter, H is [rows, 2*inter] (gate | up).
void silu_mul_bf16(const bf16* H, bf16* A, long long rows, int inter, cudaStream_t s);
// Same, quantised to e4m3 as A / scale (scale: a host value, per tensor).
void silu_mul_fp8(const bf16* H, fp8* A, long long rows, int inter, float inv_scale, cudaStream_t s);

// Routing index: from top-k expert ids [tokens, topk] build, stably in token order,
//   offsets[e] (exclusive prefix of per-expert counts, offsets[E] = tokens*topk) and
//   dest[t*topk + j] = row of (t, j) in the expert-sorted buffer.
// Single block; E <= 1024; tokens*topk <= 1 << 20.
void build_route_index(const int* topk_ids, int tokens, int topk, int experts, int* offsets,
                       int* dest, cudaStream_t s);
// out[dest[t*topk + j], :] = x[t, :]; hidden*2 bytes must be a multiple of 16.
void permute_tokens(const bf16* x, const int* dest, int tokens, int topk, int hidden, bf16* out,
                    cudaStream_t s);
// Same result through the bulk copy engine (cp.async.bulk, sm_90): one thread per block.
void permute_tokens_bulk(const bf16* x, const int* dest, int tokens, int topk, int hidden, bf16* out,
                         cudaStream_t s);
// Same, default write-back stores instead of streaming stores.
void permute_tokens_wb(const bf16* x, const int* dest, int tokens, int topk, int hidden, bf16* out,
                       cudaStream_t s);
// Non-stable permute without a precomputed index: counts + offsets (one block), then each token
// claims its rows with atomicAdd on per-expert cursors and copies itself. Writes offsets[E+1] and
// dest[tokens*topk] (for the combine); cursor is scratch of E ints.
void permute_tokens_atomic(const bf16* x, const int* ids, int tokens, int topk, int experts, int hidden,
                           int* offsets, int* cursor, int* dest, bf16* out, cudaStream_t s);
// out[t, :] = sum_j w[t*topk + j] * y[dest[t*topk + j], :] (fp32 accumulation).
void unpermute_combine(const bf16* y, const int* dest, const float* w, int tokens, int topk,
                       int hidden, bf16* out, cudaStream_t s);

// Group-limited top-k on fp32 logits [tokens, experts] (DeepSeek-V3 rule): scores = sigmoid,
// group score = sum of the top-2 scores of each group (+ optional bias ignored here),
// keep the best `topk_groups` of `groups`, then the best `topk` experts inside them;
// weights = selected scores normalised to sum 1. experts == 256, groups == 8 supported.
void group_topk(const float* logits, int tokens, int experts, int groups, int topk_groups,
                int topk, int* ids, float* weights, cudaStream_t s);

}  // namespace epsim::bench
