// Minimal work-sharing loop on std::thread.  Used for independent right-hand
// sides and per-group factorisations; avoids an OpenMP runtime dependency in the
// wheel.  Items are handed out one at a time from an atomic counter so uneven
// item costs still balance across threads.
#pragma once
#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace pyfacerig {

inline int default_thread_count() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Calls body(i) for i in [0, count) on up to max_threads threads.
template <typename Body>
void parallel_for(int count, int max_threads, const Body& body) {
  const int threads = std::max(1, std::min(count, max_threads));
  if (threads == 1) {
    for (int i = 0; i < count; ++i) body(i);
    return;
  }
  std::atomic<int> next{0};
  auto worker = [&]() {
    for (int i = next.fetch_add(1); i < count; i = next.fetch_add(1)) body(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
}

}  // namespace pyfacerig
