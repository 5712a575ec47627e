// Fuzz target `pools`: sequences of acquire / try_acquire / release / create / destroy and
// allocate / deallocate through the std::pmr face on ObjectPool and BufferPool of several
// slot sizes and alignments, against a model: LIFO reuse (a slot released last is handed out
// first), fresh slots never handed out twice, no overlap (every live block keeps the pattern
// written into it), alignment, in_use / available / capacity exact (chunks that double),
// bytes_reserved equal to what upstream holds for chunks, requests that do not fit a slot
// forwarded upstream, owns(), and free slots poisoned. The upstream fails where the input
// says: std::bad_alloc with nothing changed, and a constructor that throws gives its slot back.
#include "check.hpp"

#include <evmalloc/buffer_pool.hpp>
#include <evmalloc/object_pool.hpp>
#include <support/recording_resource.hpp>

#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/asan_interface.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <new>
#include <optional>
#include <vector>

namespace
{
using evmalloc::fuzz::filled;
using evmalloc::fuzz::throws_bad_alloc_while_failing;
using evmalloc::test::RecordingResource;

struct ConstructorFailed
{
};

// An object of Size bytes at Align whose constructor fills it with a tag, or throws.
template <std::size_t Size, std::size_t Align>
struct alignas(Align) Obj
{
    static constexpr std::size_t size = Size;  ///< what the constructor fills (sizeof may be more)
    std::uint8_t bytes[Size];
    static inline long alive = 0;

    Obj(std::uint8_t tag, bool fail)
    {
        if (fail)
            throw ConstructorFailed{};
        std::memset(bytes, tag, Size);
        ++alive;
    }
    ~Obj() { --alive; }
};

// Every block handed out by any pool or upstream, to check that none overlaps another.
struct Blocks
{
    std::map<std::uintptr_t, std::uintptr_t> live;  // begin -> end

    FUZZ_NO_COVERAGE void add(const void* p, std::size_t n)
    {
        const auto b = reinterpret_cast<std::uintptr_t>(p);
        const std::uintptr_t e = b + (n == 0 ? 1 : n);
        const auto next = live.lower_bound(b);
        FUZZ_CHECK(next == live.end() || next->first >= e);
        if (next != live.begin())
            FUZZ_CHECK(std::prev(next)->second <= b);
        live.emplace(b, e);
    }
    FUZZ_NO_COVERAGE void remove(const void* p)
    {
        FUZZ_CHECK(live.erase(reinterpret_cast<std::uintptr_t>(p)) == 1);
    }
};

enum class Kind
{
    raw,      // acquire() / try_acquire()
    object,   // create()
    pmr,      // allocate() that fits a slot
    forward,  // allocate() sent upstream
};

struct LiveBlock
{
    void* p;
    Kind kind;
    std::size_t bytes;
    std::size_t alignment;
    std::uint8_t tag;
};

// One pool under the model. Pool is ObjectPool<T> (HasObjects) or BufferPool<N>.
template <class Pool, bool HasObjects>
class Lane
{
public:
    static constexpr std::size_t slot = Pool::slot_size;
    static constexpr std::size_t align = Pool::slot_alignment;
    static constexpr std::size_t payload = [] {
        if constexpr (HasObjects)
            return Pool::value_type::size;
        else
            return Pool::block_size;
    }();

    Lane(RecordingResource& rec, evmalloc::test::FailureStyle style, Blocks& blocks,
        std::size_t initial, bool fail_first)
      : rec_{rec}, blocks_{blocks}
    {
        if (initial != 0 && fail_first)
        {
            const std::size_t live = rec.live_count();
            rec.set_failing(true);
            bool threw = false;
            try
            {
                pool_.emplace(rec.upstream(style), initial);
            }
            catch (const std::bad_alloc&)
            {
                threw = true;
            }
            rec.set_failing(false);
            FUZZ_CHECK(threw && !pool_ && rec.live_count() == live);
        }
        pool_.emplace(rec.upstream(style), initial);
        capacity_ = initial;
        next_chunk_ = initial != 0 ? 2 * initial : Pool::Engine::default_first_chunk;
        check();
    }

    ~Lane()
    {
        while (!live_.empty())
            release(live_.size() - 1);
    }

    void step(FuzzedDataProvider& in, bool failing)
    {
        switch (in.ConsumeIntegralInRange<int>(0, 6))
        {
        case 0:
        case 1:
            take(Kind::raw, in, failing);
            break;
        case 2:
            try_take(in);
            break;
        case 3:
            take(HasObjects ? Kind::object : Kind::raw, in, failing);
            break;
        case 4:
            take_pmr(in, failing);
            break;
        default:
            if (!live_.empty())
                release(in.ConsumeIntegralInRange<std::size_t>(0, live_.size() - 1));
            break;
        }
        check();
    }

private:
    // The slot acquire() must return: the last one released, else a fresh one (free_ holds
    // nullptr for a released slot whose address the model never saw).
    FUZZ_NO_COVERAGE void expect_slot(void* p)
    {
        FUZZ_CHECK(p != nullptr && reinterpret_cast<std::uintptr_t>(p) % align == 0);
        FUZZ_CHECK(pool_->owns(p));
        if (!free_.empty())
        {
            FUZZ_CHECK(free_.back() == nullptr || free_.back() == p);
            free_.pop_back();
        }
        else
        {
            if (fresh() == 0)
                grow();
            FUZZ_CHECK(fresh() != 0);
        }
        ++in_use_;
        FUZZ_CHECK(!__asan_region_is_poisoned(p, slot));
    }

    std::size_t fresh() const { return capacity_ - in_use_ - free_.size(); }
    void grow()
    {
        capacity_ += next_chunk_;
        next_chunk_ *= 2;
    }
    bool must_grow() const { return free_.empty() && fresh() == 0; }

    FUZZ_NO_COVERAGE void hand_out(void* p, Kind kind, std::size_t bytes, std::size_t alignment)
    {
        const auto tag = static_cast<std::uint8_t>(++tags_);
        if (kind != Kind::object)
            std::memset(p, tag, bytes);
        else
            FUZZ_CHECK(filled(p, bytes, tag));
        blocks_.add(p, bytes);
        live_.push_back({p, kind, bytes, alignment, tag});
    }

    // Upstream fails: std::bad_alloc, and the pool is exactly as it was.
    template <class F>
    FUZZ_NO_COVERAGE void expect_bad_alloc(F&& f)
    {
        const std::size_t cap = pool_->capacity(), used = pool_->in_use(),
                          reserved = pool_->bytes_reserved();
        const std::size_t live = rec_.live_count();
        FUZZ_CHECK(throws_bad_alloc_while_failing(rec_, f));
        FUZZ_CHECK(pool_->capacity() == cap && pool_->in_use() == used &&
                   pool_->bytes_reserved() == reserved);
        FUZZ_CHECK(rec_.live_count() == live);
    }

    void take(Kind kind, FuzzedDataProvider& in, bool failing)
    {
        const bool throw_in_constructor =
            kind == Kind::object && in.ConsumeIntegral<std::uint8_t>() < 32;
        if (failing && must_grow())
        {
            if (kind == Kind::object)
                expect_bad_alloc([&] { return create(false); });
            else
                expect_bad_alloc([&] { return pool_->acquire(); });
            return;
        }
        if (throw_in_constructor)
        {
            // The slot goes back: it is the next one handed out.
            const long alive = alive_objects();
            bool threw = false;
            try
            {
                static_cast<void>(create(true));
            }
            catch (const ConstructorFailed&)
            {
                threw = true;
            }
            FUZZ_CHECK(threw && alive_objects() == alive);
            if (free_.empty())
            {
                if (fresh() == 0)
                    grow();
                free_.push_back(nullptr);
            }
            return;
        }
        void* const p = kind == Kind::object ? create(false) : static_cast<void*>(pool_->acquire());
        expect_slot(p);
        hand_out(p, kind, payload, align);
    }

    void try_take(FuzzedDataProvider&)
    {
        const std::size_t allocations = rec_.allocations();
        void* const p = pool_->try_acquire();
        FUZZ_CHECK(rec_.allocations() == allocations);
        if (free_.empty())
        {
            FUZZ_CHECK(p == nullptr);
            return;
        }
        expect_slot(p);
        hand_out(p, Kind::raw, payload, align);
    }

    void take_pmr(FuzzedDataProvider& in, bool failing)
    {
        std::pmr::memory_resource& r = *pool_;
        const std::size_t bytes = in.ConsumeBool()
                                      ? in.ConsumeIntegralInRange<std::size_t>(0, slot)
                                      : in.ConsumeIntegralInRange<std::size_t>(0, 3 * slot);
        const std::size_t alignment = std::size_t{1} << in.ConsumeIntegralInRange<int>(0, 8);
        const bool fits = bytes <= slot && alignment <= align;
        FUZZ_CHECK(Pool::fits(bytes, alignment) == fits);
        if (failing && (!fits || must_grow()))
        {
            expect_bad_alloc([&] { return r.allocate(bytes, alignment); });
            return;
        }
        const std::size_t live = rec_.live_count();
        void* const p = r.allocate(bytes, alignment);
        FUZZ_CHECK(reinterpret_cast<std::uintptr_t>(p) % alignment == 0);
        if (fits)
            expect_slot(p);
        else
        {
            FUZZ_CHECK(rec_.is_live(p) && rec_.live_count() == live + 1 && !pool_->owns(p));
            forwarded_bytes_ += bytes;
        }
        hand_out(p, fits ? Kind::pmr : Kind::forward, bytes, alignment);
    }

    void* create(bool fail)
    {
        if constexpr (HasObjects)
            return pool_->create(static_cast<std::uint8_t>(tags_ + 1), fail);
        else
            return fail ? nullptr : nullptr;
    }
    long alive_objects() const
    {
        if constexpr (HasObjects)
            return Pool::value_type::alive;
        else
            return 0;
    }

    FUZZ_NO_COVERAGE void release(std::size_t index)
    {
        const LiveBlock b = live_[index];
        live_.erase(live_.begin() + static_cast<std::ptrdiff_t>(index));
        FUZZ_CHECK(filled(b.p, b.bytes, b.tag));
        blocks_.remove(b.p);
        switch (b.kind)
        {
        case Kind::raw:
            if constexpr (HasObjects)
                pool_->release(static_cast<typename Pool::value_type*>(b.p));
            else
                pool_->release(static_cast<std::byte*>(b.p));
            break;
        case Kind::object:
            if constexpr (HasObjects)
            {
                const long alive = alive_objects();
                pool_->destroy(static_cast<typename Pool::value_type*>(b.p));
                FUZZ_CHECK(alive_objects() == alive - 1);
            }
            break;
        case Kind::pmr:
        case Kind::forward:
            static_cast<std::pmr::memory_resource&>(*pool_).deallocate(b.p, b.bytes, b.alignment);
            break;
        }
        if (b.kind == Kind::forward)
        {
            FUZZ_CHECK(!rec_.is_live(b.p));
            forwarded_bytes_ -= b.bytes;
            return;
        }
        --in_use_;
        free_.push_back(b.p);
        FUZZ_CHECK(__asan_address_is_poisoned(b.p));
        FUZZ_CHECK(__asan_address_is_poisoned(static_cast<std::uint8_t*>(b.p) + slot - 1));
    }

    FUZZ_NO_COVERAGE void check() const
    {
        FUZZ_CHECK(pool_->capacity() == capacity_);
        FUZZ_CHECK(pool_->in_use() == in_use_);
        FUZZ_CHECK(pool_->available() == capacity_ - in_use_);
        FUZZ_CHECK(
            pool_->utilization() ==
            (capacity_ == 0 ? 0.0 : static_cast<double>(in_use_) / static_cast<double>(capacity_)));
        FUZZ_CHECK(pool_->upstream() == &rec_);
    }

    RecordingResource& rec_;
    Blocks& blocks_;
    std::optional<Pool> pool_;
    std::vector<LiveBlock> live_;
    std::vector<void*> free_;
    std::size_t capacity_ = 0;
    std::size_t next_chunk_ = 0;
    std::size_t in_use_ = 0;
    std::size_t forwarded_bytes_ = 0;
    unsigned tags_ = 0;

public:
    /// Bytes the pool holds from upstream for chunks: everything live upstream but forwarded requests.
    std::size_t bytes_reserved() const { return pool_->bytes_reserved(); }
    std::size_t forwarded_bytes() const { return forwarded_bytes_; }
};
}  // namespace

/// Steps one input drives at most: long inputs stay cheap, and the corpus keeps its variety.
constexpr int max_steps = 256;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider in{data, size};
    RecordingResource rec;
    const evmalloc::test::FailureStyle style = evmalloc::fuzz::pick_failure_style(in);
    {
        Blocks blocks;
        const auto initial = [&] {
            return in.ConsumeBool() ? std::size_t{0}
                                    : in.ConsumeIntegralInRange<std::size_t>(0, 12);
        };
        const auto fail_first = [&] { return in.ConsumeIntegral<std::uint8_t>() < 16; };
        Lane<evmalloc::ObjectPool<Obj<3, 1>>, true> tiny{
            rec, style, blocks, initial(), fail_first()};
        Lane<evmalloc::ObjectPool<Obj<20, 4>>, true> address{
            rec, style, blocks, initial(), fail_first()};
        Lane<evmalloc::ObjectPool<Obj<32, 32>>, true> word{
            rec, style, blocks, initial(), fail_first()};
        Lane<evmalloc::ObjectPool<Obj<200, 128>>, true> wide{
            rec, style, blocks, initial(), fail_first()};
        Lane<evmalloc::ObjectPool<Obj<4096, 64>>, true> page_object{
            rec, style, blocks, initial(), fail_first()};
        Lane<evmalloc::BufferPool<24>, false> b24{rec, style, blocks, initial(), fail_first()};
        Lane<evmalloc::BufferPool<256>, false> b256{rec, style, blocks, initial(), fail_first()};
        Lane<evmalloc::BufferPool<4096>, false> b4096{rec, style, blocks, initial(), fail_first()};

        const auto reserved = [&] {
            return tiny.bytes_reserved() + address.bytes_reserved() + word.bytes_reserved() +
                   wide.bytes_reserved() + page_object.bytes_reserved() + b24.bytes_reserved() +
                   b256.bytes_reserved() + b4096.bytes_reserved();
        };
        const auto forwarded = [&] {
            return tiny.forwarded_bytes() + address.forwarded_bytes() + word.forwarded_bytes() +
                   wide.forwarded_bytes() + page_object.forwarded_bytes() + b24.forwarded_bytes() +
                   b256.forwarded_bytes() + b4096.forwarded_bytes();
        };
        for (int steps = 0; steps < max_steps && in.remaining_bytes() != 0; ++steps)
        {
            const bool failing = in.ConsumeIntegral<std::uint8_t>() < 40;
            switch (in.ConsumeIntegralInRange<int>(0, 7))
            {
            case 0:
                tiny.step(in, failing);
                break;
            case 1:
                address.step(in, failing);
                break;
            case 2:
                word.step(in, failing);
                break;
            case 3:
                wide.step(in, failing);
                break;
            case 4:
                page_object.step(in, failing);
                break;
            case 5:
                b24.step(in, failing);
                break;
            case 6:
                b256.step(in, failing);
                break;
            default:
                b4096.step(in, failing);
                break;
            }
            // The upstream holds the pools' chunks and the forwarded requests, nothing else.
            FUZZ_CHECK(rec.live_bytes() == reserved() + forwarded());
        }
    }
    FUZZ_CHECK(rec.check());
    return 0;
}
