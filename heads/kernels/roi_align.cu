// RoIAlign forward and backward on NCHW f32 features, one thread per pooled output element
// (grid-stride loops). The sample geometry and bilinear weights mirror
// heads/src/ops/roi_align/cpu.rs (and torchvision's semantics): bins of
// roi_size / pooled_size, a grid_h x grid_w grid of samples at sub-cell centres
// (sampling_ratio > 0 fixes it, <= 0 makes it ceil(roi_size / pooled_size)), samples beyond
// one pixel outside the map contribute zero, samples in the border pixel are clamped to it.
// RoIs whose batch index is not in [0, n) pool zeros (the CPU path rejects them with an
// error; a kernel cannot).

struct Geometry {
  int batch;
  float start_h, start_w, bin_h, bin_w;
  int grid_h, grid_w;
  float count;
};

__device__ __forceinline__ bool roi_geometry(const float* roi, int n, int pooled_h, int pooled_w,
                                             float scale, int sampling_ratio, int aligned,
                                             Geometry* g) {
  const float b = roi[0];
  if (!(b >= 0.0f && b < (float)n)) return false;
  g->batch = (int)b;
  const float offset = aligned ? 0.5f : 0.0f;
  g->start_w = roi[1] * scale - offset;
  g->start_h = roi[2] * scale - offset;
  float roi_w = (roi[3] * scale - offset) - g->start_w;
  float roi_h = (roi[4] * scale - offset) - g->start_h;
  if (!aligned) {  // malformed RoIs are forced to 1x1
    roi_w = (roi_w < 1.0f) ? 1.0f : roi_w;
    roi_h = (roi_h < 1.0f) ? 1.0f : roi_h;
  }
  g->bin_h = roi_h / (float)pooled_h;
  g->bin_w = roi_w / (float)pooled_w;
  if (sampling_ratio > 0) {
    g->grid_h = sampling_ratio;
    g->grid_w = sampling_ratio;
  } else {
    const float gh = ceilf(roi_h / (float)pooled_h), gw = ceilf(roi_w / (float)pooled_w);
    g->grid_h = (gh > 0.0f) ? (int)gh : 0;  // NaN and negative sizes: empty grid
    g->grid_w = (gw > 0.0f) ? (int)gw : 0;
  }
  const int count = g->grid_h * g->grid_w;
  g->count = (float)(count > 1 ? count : 1);
  return true;
}

// Bilinear sample at (y, x): four offsets into an H*W plane and their weights. Returns false
// for samples more than one pixel outside (and NaN coordinates).
__device__ __forceinline__ bool bilinear(float y, float x, int height, int width, int pos[4],
                                         float wt[4]) {
  if (!(y >= -1.0f && y <= (float)height && x >= -1.0f && x <= (float)width)) return false;
  y = (y <= 0.0f) ? 0.0f : y;
  x = (x <= 0.0f) ? 0.0f : x;
  int y_low = (int)y, x_low = (int)x, y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = (float)y_low;
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = (float)x_low;
  } else {
    x_high = x_low + 1;
  }
  const float ly = y - (float)y_low, lx = x - (float)x_low;
  const float hy = 1.0f - ly, hx = 1.0f - lx;
  pos[0] = y_low * width + x_low;
  pos[1] = y_low * width + x_high;
  pos[2] = y_high * width + x_low;
  pos[3] = y_high * width + x_high;
  wt[0] = hy * hx;
  wt[1] = hy * lx;
  wt[2] = ly * hx;
  wt[3] = ly * lx;
  return true;
}

extern "C" __global__ void roi_align_forward(const float* __restrict__ input,
                                             const float* __restrict__ rois,
                                             float* __restrict__ output, long long total, int n,
                                             int channels, int height, int width, int pooled_h,
                                             int pooled_w, float scale, int sampling_ratio,
                                             int aligned) {
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    const int px = idx % pooled_w;
    const int py = (idx / pooled_w) % pooled_h;
    const int c = (idx / pooled_w / pooled_h) % channels;
    const long long r = idx / pooled_w / pooled_h / channels;
    Geometry g;
    if (!roi_geometry(rois + r * 5, n, pooled_h, pooled_w, scale, sampling_ratio, aligned, &g)) {
      output[idx] = 0.0f;
      continue;
    }
    const float* plane = input + ((long long)g.batch * channels + c) * height * width;
    float sum = 0.0f;
    for (int iy = 0; iy < g.grid_h; iy++) {
      const float y = g.start_h + py * g.bin_h + ((float)iy + 0.5f) * g.bin_h / (float)g.grid_h;
      for (int ix = 0; ix < g.grid_w; ix++) {
        const float x = g.start_w + px * g.bin_w + ((float)ix + 0.5f) * g.bin_w / (float)g.grid_w;
        int pos[4];
        float wt[4];
        if (!bilinear(y, x, height, width, pos, wt)) continue;
        sum += wt[0] * plane[pos[0]] + wt[1] * plane[pos[1]] + wt[2] * plane[pos[2]] +
               wt[3] * plane[pos[3]];
      }
    }
    output[idx] = sum / g.count;
  }
}

// grad_input must be zeroed; every pooled gradient is scattered with atomicAdd.
extern "C" __global__ void roi_align_backward(const float* __restrict__ grad,
                                              const float* __restrict__ rois,
                                              float* __restrict__ grad_input, long long total,
                                              int n, int channels, int height, int width,
                                              int pooled_h, int pooled_w, float scale,
                                              int sampling_ratio, int aligned) {
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    const int px = idx % pooled_w;
    const int py = (idx / pooled_w) % pooled_h;
    const int c = (idx / pooled_w / pooled_h) % channels;
    const long long r = idx / pooled_w / pooled_h / channels;
    Geometry g;
    if (!roi_geometry(rois + r * 5, n, pooled_h, pooled_w, scale, sampling_ratio, aligned, &g)) {
      continue;
    }
    float* plane = grad_input + ((long long)g.batch * channels + c) * height * width;
    const float gv = grad[idx] / g.count;
    for (int iy = 0; iy < g.grid_h; iy++) {
      const float y = g.start_h + py * g.bin_h + ((float)iy + 0.5f) * g.bin_h / (float)g.grid_h;
      for (int ix = 0; ix < g.grid_w; ix++) {
        const float x = g.start_w + px * g.bin_w + ((float)ix + 0.5f) * g.bin_w / (float)g.grid_w;
        int pos[4];
        float wt[4];
        if (!bilinear(y, x, height, width, pos, wt)) continue;
        for (int k = 0; k < 4; k++) atomicAdd(plane + pos[k], gv * wt[k]);
      }
    }
  }
}
