// GPU figures through NVML, loaded with dlopen at call time: the addon must load (and the app
// must run) on machines without an NVIDIA driver, and nvml.h is not needed to build. Plain C++
// with no Node dependency, so it can be compiled alone and checked on the GPU machine.
#pragma once
#include <dlfcn.h>

#include <mutex>
#include <string>
#include <vector>

namespace lcxnode {

struct NvmlGpu {
  unsigned index = 0;
  std::string name;
  unsigned long long total_bytes = 0, used_bytes = 0;
  bool has_util = false, has_temp = false, has_power = false;
  unsigned utilization_pct = 0, temperature_c = 0;
  double power_w = 0;
};

struct NvmlReading {
  bool ok = false;
  std::string reason;  // why not, when !ok
  std::string driver;
  std::vector<NvmlGpu> gpus;
};

namespace nvml_detail {

// The few NVML types and entry points used, declared by hand (ABI of nvml.h, stable since 2012).
typedef int nvmlReturn_t;  // NVML_SUCCESS = 0
typedef struct nvmlDevice_st* nvmlDevice_t;
struct nvmlMemory_t {
  unsigned long long total, free, used;
};
// v2 reports "used" without the driver's reserved memory, as nvidia-smi shows it.
struct nvmlMemory_v2_t {
  unsigned int version;
  unsigned long long total, reserved, free, used;
};
constexpr unsigned kMemoryV2Version = static_cast<unsigned>(sizeof(nvmlMemory_v2_t)) | (2u << 24);  // NVML_STRUCT_VERSION
struct nvmlUtilization_t {
  unsigned int gpu, memory;
};
constexpr int kTemperatureGpu = 0;       // NVML_TEMPERATURE_GPU
constexpr unsigned kNameBuffer = 96;     // NVML_DEVICE_NAME_V2_BUFFER_SIZE
constexpr unsigned kDriverBuffer = 80;   // NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE

struct Api {
  void* lib = nullptr;
  bool initialized = false;
  nvmlReturn_t (*Init_v2)() = nullptr;
  nvmlReturn_t (*DeviceGetCount_v2)(unsigned*) = nullptr;
  nvmlReturn_t (*DeviceGetHandleByIndex_v2)(unsigned, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*DeviceGetName)(nvmlDevice_t, char*, unsigned) = nullptr;
  nvmlReturn_t (*DeviceGetMemoryInfo)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*DeviceGetMemoryInfo_v2)(nvmlDevice_t, nvmlMemory_v2_t*) = nullptr;
  nvmlReturn_t (*DeviceGetUtilizationRates)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*DeviceGetTemperature)(nvmlDevice_t, int, unsigned*) = nullptr;
  nvmlReturn_t (*DeviceGetPowerUsage)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*SystemGetDriverVersion)(char*, unsigned) = nullptr;
  const char* (*ErrorString)(nvmlReturn_t) = nullptr;

  std::string error(const char* what, nvmlReturn_t r) const {
    std::string msg = std::string(what) + " failed";
    if (ErrorString) {
      const char* s = ErrorString(r);
      if (s) msg += std::string(": ") + s;
    }
    return msg;
  }
};

template <typename F>
bool sym(void* lib, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  return out != nullptr;
}

// Loads and initialises once per process; a failed attempt is retried on the next call (a
// driver may be installed or loaded while the app runs).
inline bool ensure(Api& api, std::string& reason) {
  if (api.initialized) return true;
  if (!api.lib) {
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      reason = "libnvidia-ml.so.1 not found";
      return false;
    }
    Api a;
    a.lib = lib;
    bool all = sym(lib, "nvmlInit_v2", a.Init_v2) && sym(lib, "nvmlDeviceGetCount_v2", a.DeviceGetCount_v2) &&
               sym(lib, "nvmlDeviceGetHandleByIndex_v2", a.DeviceGetHandleByIndex_v2) &&
               sym(lib, "nvmlDeviceGetName", a.DeviceGetName) &&
               sym(lib, "nvmlDeviceGetMemoryInfo", a.DeviceGetMemoryInfo) &&
               sym(lib, "nvmlSystemGetDriverVersion", a.SystemGetDriverVersion) &&
               sym(lib, "nvmlErrorString", a.ErrorString);
    // Utilization, temperature and power are optional figures (not every GPU reports them).
    sym(lib, "nvmlDeviceGetMemoryInfo_v2", a.DeviceGetMemoryInfo_v2);  // drivers >= 510
    sym(lib, "nvmlDeviceGetUtilizationRates", a.DeviceGetUtilizationRates);
    sym(lib, "nvmlDeviceGetTemperature", a.DeviceGetTemperature);
    sym(lib, "nvmlDeviceGetPowerUsage", a.DeviceGetPowerUsage);
    if (!all) {
      dlclose(lib);
      reason = "libnvidia-ml.so.1 lacks the NVML functions this app needs (driver too old)";
      return false;
    }
    api = a;
  }
  nvmlReturn_t r = api.Init_v2();
  if (r != 0) {
    reason = api.error("nvmlInit", r);
    return false;
  }
  api.initialized = true;
  return true;
}

}  // namespace nvml_detail

// Thread-safe; cheap after the first call (a handful of driver queries per GPU).
inline NvmlReading nvml_read() {
  static nvml_detail::Api api;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  NvmlReading out;
  if (!nvml_detail::ensure(api, out.reason)) return out;

  char driver[nvml_detail::kDriverBuffer] = {0};
  if (api.SystemGetDriverVersion(driver, sizeof driver) == 0) out.driver = driver;
  unsigned count = 0;
  nvml_detail::nvmlReturn_t r = api.DeviceGetCount_v2(&count);
  if (r != 0) {
    out.reason = api.error("nvmlDeviceGetCount", r);
    return out;
  }
  for (unsigned i = 0; i < count; i++) {
    nvml_detail::nvmlDevice_t dev = nullptr;
    // A GPU we may not query (e.g. no permission) is skipped rather than failing the others.
    if (api.DeviceGetHandleByIndex_v2(i, &dev) != 0) continue;
    NvmlGpu g;
    g.index = i;
    char name[nvml_detail::kNameBuffer] = {0};
    if (api.DeviceGetName(dev, name, sizeof name) == 0) g.name = name;
    nvml_detail::nvmlMemory_v2_t mem2{};
    mem2.version = nvml_detail::kMemoryV2Version;
    nvml_detail::nvmlMemory_t mem{};
    if (api.DeviceGetMemoryInfo_v2 && api.DeviceGetMemoryInfo_v2(dev, &mem2) == 0) {
      g.total_bytes = mem2.total;
      g.used_bytes = mem2.used;
    } else if (api.DeviceGetMemoryInfo(dev, &mem) == 0) {
      g.total_bytes = mem.total;
      g.used_bytes = mem.used;
    }
    nvml_detail::nvmlUtilization_t util{};
    if (api.DeviceGetUtilizationRates && api.DeviceGetUtilizationRates(dev, &util) == 0) {
      g.has_util = true;
      g.utilization_pct = util.gpu;
    }
    unsigned temp = 0;
    if (api.DeviceGetTemperature && api.DeviceGetTemperature(dev, nvml_detail::kTemperatureGpu, &temp) == 0) {
      g.has_temp = true;
      g.temperature_c = temp;
    }
    unsigned mw = 0;
    if (api.DeviceGetPowerUsage && api.DeviceGetPowerUsage(dev, &mw) == 0) {
      g.has_power = true;
      g.power_w = mw / 1000.0;  // NVML reports milliwatts
    }
    out.gpus.push_back(g);
  }
  out.ok = true;
  return out;
}

}  // namespace lcxnode
