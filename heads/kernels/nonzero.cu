// Stream compaction of a u8 mask: the ascending indices of its non-zero entries.
// One block: each thread counts a contiguous chunk, a shared-memory scan gives each chunk its
// first output slot, then each thread writes its chunk's indices in order. `count` receives
// the total. Enough for the detector's sizes (up to a few hundred thousand anchors: one pass
// over the mask, no atomics, deterministic order).

extern "C" __global__ void nonzero_u8(const unsigned char* __restrict__ mask, long long n,
                                      unsigned int* __restrict__ out,
                                      unsigned int* __restrict__ count) {
  __shared__ unsigned int sums[1024];
  const long long t = threadIdx.x;
  const long long threads = blockDim.x;
  const long long chunk = (n + threads - 1) / threads;
  const long long begin = min(t * chunk, n);
  const long long end = min(begin + chunk, n);
  unsigned int mine = 0;
  for (long long i = begin; i < end; ++i) mine += mask[i] != 0;
  sums[t] = mine;
  __syncthreads();
  // Inclusive Hillis-Steele scan over the per-thread counts.
  for (long long offset = 1; offset < threads; offset <<= 1) {
    const unsigned int v = t >= offset ? sums[t - offset] : 0;
    __syncthreads();
    sums[t] += v;
    __syncthreads();
  }
  unsigned int pos = sums[t] - mine;
  for (long long i = begin; i < end; ++i) {
    if (mask[i] != 0) out[pos++] = (unsigned int)i;
  }
  if (t == threads - 1) *count = sums[t];
}
