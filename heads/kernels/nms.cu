// NMS bitmask kernel: for boxes already sorted by decreasing score, bit j of
// mask[i * col_blocks + b] says that box (64 * b + j) overlaps box i by IoU > threshold.
// One block of 64 threads per (row block, column block) pair above the diagonal; the host
// then walks the rows in order (a box is kept unless an earlier kept box set its bit).
// The IoU arithmetic mirrors heads/src/ops/nms/cpu.rs (compiled with FMA contraction off),
// so the CPU and the GPU keep the same boxes.

#define NMS_BLOCK 64

__device__ __forceinline__ float cmax(float a, float b) { return (a < b) ? b : a; }
__device__ __forceinline__ float cmin(float a, float b) { return (b < a) ? b : a; }

extern "C" __global__ void nms_mask(const float* __restrict__ boxes, int n, float threshold,
                                    unsigned long long* __restrict__ mask) {
  const int row_block = blockIdx.y;
  const int col_block = blockIdx.x;
  if (row_block > col_block) return;  // only pairs (i, j) with j after i matter
  const int col_blocks = gridDim.x;
  const int row_size = min(n - row_block * NMS_BLOCK, NMS_BLOCK);
  const int col_size = min(n - col_block * NMS_BLOCK, NMS_BLOCK);

  __shared__ float cols[NMS_BLOCK * 5];
  if (threadIdx.x < col_size) {
    const float* b = boxes + (col_block * NMS_BLOCK + threadIdx.x) * 4;
    cols[threadIdx.x * 5 + 0] = b[0];
    cols[threadIdx.x * 5 + 1] = b[1];
    cols[threadIdx.x * 5 + 2] = b[2];
    cols[threadIdx.x * 5 + 3] = b[3];
    cols[threadIdx.x * 5 + 4] = (b[2] - b[0]) * (b[3] - b[1]);
  }
  __syncthreads();

  if (threadIdx.x < row_size) {
    const int i = row_block * NMS_BLOCK + threadIdx.x;
    const float* a = boxes + i * 4;
    const float ax1 = a[0], ay1 = a[1], ax2 = a[2], ay2 = a[3];
    const float area_a = (ax2 - ax1) * (ay2 - ay1);
    unsigned long long bits = 0;
    const int start = (row_block == col_block) ? threadIdx.x + 1 : 0;
    for (int j = start; j < col_size; j++) {
      const float* c = cols + j * 5;
      const float w = cmax(0.0f, cmin(ax2, c[2]) - cmax(ax1, c[0]));
      const float h = cmax(0.0f, cmin(ay2, c[3]) - cmax(ay1, c[1]));
      const float inter = w * h;
      const float iou = inter / (area_a + c[4] - inter);
      if (iou > threshold) bits |= 1ULL << j;
    }
    mask[(size_t)i * col_blocks + col_block] = bits;
  }
}

// The greedy walk over the mask, on the device (so neither the mask nor the scores go to the
// host): box i, in score order, is kept unless a kept box before it set its bit. One block;
// `removed` (shared, one word per column block) accumulates the rows of the kept boxes. Every
// thread holds the same copy of the current word, so each "kept" branch is taken by all
// threads together and may synchronise; the rows are ORed in by all threads, each taking
// every blockDim.x-th word from the current column block on.
// keep[i] = 1 for a kept box, 0 otherwise (i in score order).
extern "C" __global__ void nms_keep(const unsigned long long* __restrict__ mask, int n,
                                    unsigned char* __restrict__ keep) {
  extern __shared__ unsigned long long removed[];
  const int col_blocks = (n + NMS_BLOCK - 1) / NMS_BLOCK;
  for (int j = threadIdx.x; j < col_blocks; j += blockDim.x) removed[j] = 0ULL;
  for (int i = threadIdx.x; i < n; i += blockDim.x) keep[i] = 0;
  __syncthreads();
  for (int b = 0; b < col_blocks; b++) {
    __syncthreads();  // the last block's writes are done before anyone reads this word
    unsigned long long word = removed[b];
    const int count = min(n - b * NMS_BLOCK, NMS_BLOCK);
    for (int bit = 0; bit < count; bit++) {
      if ((word >> bit) & 1ULL) continue;  // suppressed by an earlier kept box
      const int i = b * NMS_BLOCK + bit;
      if (threadIdx.x == 0) keep[i] = 1;
      const unsigned long long* row = mask + (size_t)i * col_blocks;
      for (int j = b + threadIdx.x; j < col_blocks; j += blockDim.x) removed[j] |= row[j];
      __syncthreads();  // every OR done before anyone reads the word again
      word = removed[b];
      __syncthreads();  // every read done before the next kept box writes
    }
  }
}
