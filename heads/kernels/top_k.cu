// Row-wise top-k indices by a full bitonic sort in global memory (rows padded to a power of
// two). Order: larger value first, ties by lower index, NaN after every number, padding last:
// the order of heads/src/ops/top_k/cpu.rs. One thread per element and launch per
// (k, j) stage; log2(P)^2 / 2 launches, ~170 for 200k anchors.

__device__ __forceinline__ int rank_class(float v, unsigned int i) {
  if (i == 0xffffffffu) return 2;  // padding
  if (v != v) return 1;            // NaN
  return 0;
}

// True when (va, ia) comes strictly before (vb, ib).
__device__ __forceinline__ bool before(float va, unsigned int ia, float vb, unsigned int ib) {
  const int ca = rank_class(va, ia), cb = rank_class(vb, ib);
  if (ca != cb) return ca < cb;
  if (ca == 0 && va != vb) return va > vb;
  return ia < ib;
}

extern "C" __global__ void top_k_init(const float* __restrict__ x, long long rows, long long n,
                                      long long padded, float* __restrict__ keys,
                                      unsigned int* __restrict__ idx) {
  const long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= rows * padded) return;
  const long long row = g / padded, i = g % padded;
  if (i < n) {
    keys[g] = x[row * n + i];
    idx[g] = (unsigned int)i;
  } else {
    keys[g] = 0.0f;
    idx[g] = 0xffffffffu;
  }
}

extern "C" __global__ void top_k_step(float* __restrict__ keys, unsigned int* __restrict__ idx,
                                      long long rows, long long padded, long long k,
                                      long long j) {
  const long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= rows * padded) return;
  const long long i = g % padded;
  const long long partner = i ^ j;
  if (partner <= i) return;
  const long long h = g - i + partner;
  const bool up = (i & k) == 0;
  const bool swap = up ? before(keys[h], idx[h], keys[g], idx[g])
                       : before(keys[g], idx[g], keys[h], idx[h]);
  if (swap) {
    const float kv = keys[g];
    keys[g] = keys[h];
    keys[h] = kv;
    const unsigned int iv = idx[g];
    idx[g] = idx[h];
    idx[h] = iv;
  }
}

extern "C" __global__ void top_k_take(const unsigned int* __restrict__ idx, long long rows,
                                      long long padded, long long k,
                                      unsigned int* __restrict__ out) {
  const long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= rows * k) return;
  const long long row = g / k, i = g % k;
  out[g] = idx[row * padded + i];
}
