// cxx_churn — C++ allocation churn with a deterministic checksum; driven by
// tests/t_real_cxx.sh (and t_static.sh for the copy linked with libhakmem.a).
//
// Four threads each churn std::map<std::string,...>, std::unordered_map,
// std::vector growth, std::string concatenation and std::list; blocks also
// travel between threads (a thread frees containers another built). It uses
// new[]/delete[], over-aligned new (std::align_val_t(64) and a 4096-byte
// aligned type, alignment checked), sized delete (called explicitly, plain
// and aligned), nothrow new, and checks that an impossible new[] throws
// std::bad_alloc. Prints "checksum <hex>" on stdout (identical whatever the
// allocator) and "allocator: hakmem|other" on stderr. Exit 1 on any failure.
#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

static std::atomic<int> failures{0};
static char *volatile sink;
#define EXPECT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            std::fprintf(stderr, "%s:%d: EXPECT failed: %s\n", __FILE__, __LINE__, #c);            \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

struct alignas(4096) Page {
    unsigned char b[4096];
};
struct alignas(128) Line {
    uint64_t v[16];
};

// hand-off between threads: containers built by one thread, destroyed by another
static std::mutex box_m;
static std::vector<std::unique_ptr<std::map<int, std::string>>> box;

static uint64_t work(int id, int rounds) {
    uint64_t h = (uint64_t)id;
    for (int r = 0; r < rounds; r++) {
        std::map<std::string, std::vector<int>> m;
        for (int i = 0; i < 3000; i++) {
            std::string k =
                "key-" + std::to_string((i * 7919 + r) % 1500) + "-" + std::string(i % 40, 'q');
            m[k].push_back(i);
        }
        for (auto &kv : m) h = mix(h, kv.first.size() * 31 + kv.second.size());

        std::unordered_map<uint64_t, std::string> um;
        for (int i = 0; i < 5000; i++)
            um[(uint64_t)i * 2654435761u % 100003] += std::string(1 + i % 17, (char)('a' + i % 26));
        uint64_t us = 0;
        for (auto &kv : um) us += kv.first * kv.second.size();
        h = mix(h, us);
        um.clear();

        std::vector<std::string> vs;
        for (int i = 0; i < 4000; i++)
            vs.emplace_back(std::to_string(i) + std::string(i % 300, 'x'));
        std::string cat;
        for (auto &s : vs) cat += s.substr(0, 5);
        h = mix(h, cat.size());

        std::list<std::vector<double>> l;
        for (int i = 0; i < 500; i++) l.emplace_back(i % 50 + 1, i * 0.5);
        double ds = 0;
        for (auto &v : l) ds += v.back() * (double)v.size();
        h = mix(h, (uint64_t)ds);

        // new[] / delete[]
        for (int i = 1; i < 200; i++) {
            int *a = new int[i * 37];
            for (int k = 0; k < i * 37; k++) a[k] = k ^ i;
            h = mix(h, (uint64_t)a[i * 37 - 1]);
            delete[] a;
            std::string *sa = new std::string[i % 20 + 1];
            sa[0] = "s" + std::to_string(i);
            h = mix(h, sa[0].size());
            delete[] sa;
        }

        // aligned new / delete, sized delete
        for (int i = 0; i < 100; i++) {
            size_t n = 64 * (size_t)(i + 1);
            void *p = ::operator new(n, std::align_val_t(64));
            EXPECT(((uintptr_t)p & 63) == 0);
            std::memset(p, i, n);
            ::operator delete(p, n, std::align_val_t(64));
            Page *pg = new Page;
            EXPECT(((uintptr_t)pg & 4095) == 0);
            pg->b[4095] = (unsigned char)i;
            h = mix(h, pg->b[4095]);
            delete pg;
            Line *ln = new Line[i % 7 + 1];
            EXPECT(((uintptr_t)ln & 127) == 0);
            ln[0].v[15] = (uint64_t)i;
            h = mix(h, ln[0].v[15]);
            delete[] ln;
            void *q = ::operator new(n + 3);
            std::memset(q, 1, n + 3);
            ::operator delete(q, n + 3);
            void *big = ::operator new((size_t)(1 + i % 3) << 20, std::align_val_t(4096));
            EXPECT(((uintptr_t)big & 4095) == 0);
            std::memset(big, 2, (size_t)(1 + i % 3) << 20);
            ::operator delete(big, std::align_val_t(4096));
        }

        // cross-thread hand-off
        auto mp = std::make_unique<std::map<int, std::string>>();
        for (int i = 0; i < 300; i++) (*mp)[i] = std::string(i % 64, (char)('A' + id));
        {
            std::lock_guard<std::mutex> g(box_m);
            box.push_back(std::move(mp));
            if (box.size() > 6)
                box.erase(box.begin(), box.begin() + 3); // probably built by other threads
        }
    }
    return h;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? std::atoi(argv[1]) : 12;
    bool hak = dlsym(RTLD_DEFAULT, "hakmem_version") != nullptr;
    std::fprintf(stderr, "allocator: %s\n", hak ? "hakmem" : "other");

    // bad_alloc and nothrow
    // results go through a volatile sink: a new-expression whose result is
    // unused may be elided by the compiler (C++14), and then nothing throws
    bool threw = false;
    try {
        volatile size_t huge = SIZE_MAX / 4;
        sink = new char[huge];
        delete[] sink;
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    EXPECT(threw);
    threw = false;
    try {
        volatile size_t huge = SIZE_MAX / 4;
        sink = static_cast<char *>(::operator new(huge, std::align_val_t(64)));
        ::operator delete(sink, std::align_val_t(64));
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    EXPECT(threw);
    volatile size_t huge2 = SIZE_MAX / 4;
    sink = new (std::nothrow) char[huge2];
    EXPECT(sink == nullptr);
    delete[] sink;
    int *ok = new (std::nothrow) int[10];
    EXPECT(ok != nullptr);
    delete[] ok;

    uint64_t res[4] = {0, 0, 0, 0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; i++) ts.emplace_back([i, rounds, &res] { res[i] = work(i, rounds); });
    for (auto &t : ts) t.join();
    box.clear();
    uint64_t h = 0;
    for (int i = 0; i < 4; i++) h = mix(h, res[i]);
    std::printf("checksum %016llx\n", (unsigned long long)h);
    if (failures) {
        std::fprintf(stderr, "%d failures\n", failures.load());
        return 1;
    }
    return 0;
}
