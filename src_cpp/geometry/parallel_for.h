// Minimal work-sharing loop on std::thread.  Used for independent right-hand
// sides, per-group factorisations and per-vertex fits; it avoids an OpenMP
// runtime dependency in the wheel.  Items are handed out one at a time from an
// atomic counter so uneven item costs still balance across threads.
#pragma once
#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace pyfacerig {

inline int default_thread_count() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Calls body(i) for i in [0, count) on up to max_threads threads.  An
// exception in any item (std::bad_alloc on a huge mesh, say) stops the loop
// and is rethrown on the calling thread instead of terminating the process.
template <typename Body>
void parallel_for(int count, int max_threads, const Body& body) {
  const int threads = std::max(1, std::min(count, max_threads));
  if (threads == 1) {
    for (int i = 0; i < count; ++i) body(i);
    return;
  }
  std::atomic<int> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    try {
      for (int i = next.fetch_add(1); i < count; i = next.fetch_add(1)) body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next = count;  // let the other threads stop early
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace pyfacerig
