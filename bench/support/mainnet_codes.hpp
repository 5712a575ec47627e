// Benchmark support: a large code set with mainnet-like sizes, and a Zipf-like popularity.
//
// mainnet_like_codes(count, seed): `count` generated contracts (support/workload_code.hpp's
// generator: the corpus's opcode mix), seeded and deterministic, with sizes drawn from
//
//     share  bytes (log-uniform within a band)  stands for
//     20%    45 .. 1,000                        proxies (EIP-1167 minimal proxy 45 B, ERC-1967 ~0.7 KB)
//     55%    1,000 .. 5,000                     tokens and simple contracts (OZ ERC-20 2.1 KB, ERC-721 4.3 KB)
//     20%    5,000 .. 16,384                    larger applications (the deposit contract 6.4 KB)
//      5%    16,384 .. 24,576                   contracts near the EIP-170 limit (routers, DeFi cores)
//
// This distribution is an ASSUMPTION, not a measurement of chain data: its bands are the sizes
// of the corpus's real contracts (45 B to 14.6 KB, ../shared/corpus/MANIFEST.tsv) and the
// EIP-170 cap of 24,576 bytes, its shares the common observation that most called code is
// small proxies and tokens and some is near the cap. Mean about 4.4 KB, median about 2.4 KB (computed from the bands).
//
// ZipfSampler(n, s): rank r in [0, n) with probability proportional to 1 / (r + 1)^s.
#pragma once

#include "support/workload_code.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace evmalloc::bench
{
/// One size drawn from the distribution above.
inline std::size_t draw_mainnet_size(std::mt19937_64& rng)
{
    const double u = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
    const double v = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
    const auto between = [v](double lo, double hi) { return lo * std::pow(hi / lo, v); };
    const double bytes = u < 0.20   ? between(45, 1000)
                         : u < 0.75 ? between(1000, 5000)
                         : u < 0.95 ? between(5000, 16384)
                                    : between(16384, 24576);
    return static_cast<std::size_t>(bytes);
}

/// `count` generated contracts named "gen_mainnet_<i>_<bytes>", sizes as above.
inline std::vector<WorkloadContract> mainnet_like_codes(std::size_t count, std::uint64_t seed)
{
    std::mt19937_64 rng{seed};
    std::vector<WorkloadContract> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i)
    {
        const std::size_t size = draw_mainnet_size(rng);
        auto code = detail::generate_code(size, static_cast<std::uint32_t>(rng()));
        out.push_back({"gen_mainnet_" + std::to_string(i) + "_" + std::to_string(size),
            std::move(code), true});
    }
    return out;
}

/// Ranks drawn with P(r) proportional to 1 / (r + 1)^exponent.
class ZipfSampler
{
public:
    /// \requires n > 0
    ZipfSampler(std::size_t n, double exponent) : cdf_(n)
    {
        double total = 0.0;
        for (std::size_t r = 0; r < n; ++r)
        {
            total += 1.0 / std::pow(static_cast<double>(r + 1), exponent);
            cdf_[r] = total;
        }
        for (double& c : cdf_)
            c /= total;
    }

    template <class Rng>
    std::size_t operator()(Rng& rng) const
    {
        const double u = std::uniform_real_distribution<double>{0.0, 1.0}(rng);
        const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
        return std::min(static_cast<std::size_t>(it - cdf_.begin()), cdf_.size() - 1);
    }

private:
    std::vector<double> cdf_;
};
}  // namespace evmalloc::bench
