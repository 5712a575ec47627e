// evmalloc: analyses shared between calls, found by code hash, pinned by the frames that run them.
//
// Real chains call the same few contracts again and again, and a contract that calls itself
// 1024 deep would otherwise hold 1025 identical analyses. So the code part of a frame (any
// CodePart, code_part.hpp: the padded code and what the interpreter's analysis writes beside it)
// is also kept here: built once through the part's prepare(), read-only after that, and pinned
// by every frame that runs it; such a frame's own buffer holds only the stack
// (StackFrame::init(code, ..., pool, cache)) and its code_part() is the entry's View.
//
// One entry is one block from the upstream resource: a header (the lookup fields, the part's
// View, the bookkeeping: 192 bytes with the built-in instruction part, 128 with the jumpdest
// part; what a lookup reads is in its first 64, a cache line, checked at compile time), then the
// code part prepared for the code's real length (code_part_bytes(n), not its tier). Per code
// byte that is
//   instruction frame, DefaultTraits:  4 (inst_to_pc) + 4 (pc_to_inst) + 1/8 (jumpdest bits)
//                                      + 8 (ops) + 8 (metadata) + 1 (code)  ~ 25.1 bytes
//   jumpdest frame:                    1/8 (jumpdest bits) + 1 (code)      ~ 1.13 bytes
//   an interpreter-defined part:       its calculate_allocation(n).size / n
// plus the 33 bytes of padding and the rounding to 64.
//
// Keys. One entry per (key, op table object): the same code under another OpTable object is
// another entry (a part without a table, the jumpdest frame's, has none); table_address() is the
// one place that says what identifies a table. Two ways to find code, whose entries never
// answer each other:
//   trusted   by the CodeHash the caller has (it promises it is the hash of exactly these
//             bytes): O(1) whatever the code size. An entry found under the hash with another
//             code size is Errc::code_hash_mismatch (debug builds also compare the bytes).
//   verified  by code_fingerprint() of the bytes (or the Fingerprint given), and the bytes
//             compared on every hit: a collision costs a comparison, never a wrong analysis.
//
// Costs (n = code size). A hit: the bucket, the entry's header, the pin: O(1) with a trusted
// key, O(n) hashing and comparing with a verified one (no allocation either way). A miss: one
// upstream block and the analysis, as StackFrame::prepare; the bucket array doubles, on a miss,
// when the entries outnumber the buckets. Recency is kept when a frame unpins its entry (it
// moves to the newest end of an intrusive list: its header and its two neighbours'), so the
// hit itself writes only the pin count, and a call that failed after its lookup leaves the
// order as it was. Eviction walks from the oldest end and frees exactly the least recently
// released unpinned entries (a pinned entry is in use: never a candidate).
//
// Budget: max_bytes bounds the entries' blocks. Over it, the least recently used unpinned
// entries go (at a miss, and when a frame unpins). A pinned entry is never freed and a full
// budget never fails a call: bytes() passes max_bytes only by entries that live frames pin.
// max_bytes 0 keeps nothing that no frame pins: every call analyses afresh.
//
// AnalysisCache is for one thread, like FramePool. ConcurrentAnalysisCache (below) is shared.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <mutex>
#include <new>
#include <span>
#include <utility>

#include "analysis.hpp"
#include "code_hash.hpp"
#include "config.hpp"
#include "frame_layout.hpp"
#include "result.hpp"
#include "traits.hpp"
#include "upstream.hpp"

namespace evmalloc
{
struct AnalysisCacheConfig
{
    /// The budget of cached entries (analysis buffers, ops, metadata, the code copy, headers).
    std::size_t max_bytes = std::size_t{64} << 20;
};

/// The verified key's default hash: code_fingerprint().
struct CodeFingerprint
{
    std::uint64_t operator()(std::span<const std::uint8_t> code) const noexcept
    {
        return code_fingerprint(code);
    }
};

namespace detail
{
/// How a frame holds a cached entry: the entry and the function that lets go of it.
struct CachePin
{
    void* entry = nullptr;
    void (*unpin)(void* entry) noexcept = nullptr;
};

/// One cached code part: this header, then the code part at code_part_offset().
template <class Traits>
struct CacheEntry
{
    // What a lookup reads (find_and_pin): the first cache line (checked below).
    std::uint32_t bucket_hash;  ///< the key's bucket hash, its low 32 bits
    std::uint32_t code_size;
    CacheEntry* chain;   ///< the next entry in the same bucket
    const void* table;   ///< the OpTable object; nullptr in a jumpdest frame
    CodeHash code_hash;  ///< trusted entries only
    std::uint32_t pins;  ///< frames alive that run it
    bool trusted;        ///< found by CodeHash (else by the bytes)
    // What a frame reads: the code part's view.
    typename FrameCodePart<Traits>::View view;
    // Bookkeeping.
    CacheEntry* newer;
    CacheEntry* older;
    std::size_t bytes;  ///< the whole block
    void* owner;        ///< the cache (shard) that unpins it

    static constexpr std::size_t code_part_offset() noexcept
    {
        return align_up(sizeof(CacheEntry), frame_buffer_alignment);
    }
    std::span<std::byte> code_part() noexcept
    {
        return {
            reinterpret_cast<std::byte*>(this) + code_part_offset(), bytes - code_part_offset()};
    }

    /// True when every field find_and_pin() reads lies in the header's first 64 bytes (an entry
    /// starts 64-byte aligned: one cache line).
    static constexpr bool lookup_fits_one_line() noexcept
    {
        constexpr std::size_t line = frame_buffer_alignment;
        return offsetof(CacheEntry, bucket_hash) + sizeof(bucket_hash) <= line &&
               offsetof(CacheEntry, code_size) + sizeof(code_size) <= line &&
               offsetof(CacheEntry, chain) + sizeof(chain) <= line &&
               offsetof(CacheEntry, table) + sizeof(table) <= line &&
               offsetof(CacheEntry, code_hash) + sizeof(code_hash) <= line &&
               offsetof(CacheEntry, pins) + sizeof(pins) <= line &&
               offsetof(CacheEntry, trusted) + sizeof(trusted) <= line;
    }
};

/// What a lookup is for.
struct CacheKey
{
    std::span<const std::uint8_t> code;
    const CodeHash* hash;  ///< the trusted key, or nullptr for the verified one
    const void* table;     ///< the OpTable object, nullptr in a jumpdest frame
    std::uint64_t bucket_hash;
};

/// The single-threaded engine of both caches: the bucket array, the recency list, the counters.
/// Every function is for one thread at a time (ConcurrentAnalysisCache holds a lock around it).
template <class Traits>
class CacheCore
{
public:
    using Entry = CacheEntry<Traits>;
    static_assert(Entry::lookup_fits_one_line(), "a lookup reads one cache line of an entry");

    explicit CacheCore(Upstream upstream) noexcept : upstream_{upstream} {}
    CacheCore(const CacheCore&) = delete;
    CacheCore& operator=(const CacheCore&) = delete;

    ~CacheCore()
    {
        if constexpr (enable_asserts)
        {
            if (pinned_ != 0)
                EVMALLOC_REPORT("analysis cache destroyed while frames still pin its entries");
        }
        while (oldest_ != nullptr)
            free_entry(unlink(oldest_));
        if (buckets_ != nullptr)
            upstream_.deallocate(buckets_, bucket_count_ * sizeof(Entry*), alignof(Entry*));
    }

    /// The entry for `key`, pinned, or nullptr when there is none.
    /// \returns Errc::code_hash_mismatch when a trusted entry under key.hash has other code.
    Result<Entry*> find_and_pin(const CacheKey& key) noexcept
    {
        if (buckets_ == nullptr)
            return static_cast<Entry*>(nullptr);
        for (Entry* e = buckets_[key.bucket_hash & (bucket_count_ - 1)]; e != nullptr; e = e->chain)
        {
            if (e->bucket_hash != static_cast<std::uint32_t>(key.bucket_hash) ||
                e->table != key.table || e->trusted != (key.hash != nullptr))
                continue;
            if (key.hash != nullptr)
            {
                if (e->code_hash != *key.hash)
                    continue;
                if (e->code_size != key.code.size() || (enable_asserts && !same_code(e, key.code)))
                    return Errc::code_hash_mismatch;
            }
            else if (e->code_size != key.code.size() || !same_code(e, key.code))
                continue;
            pin(e);
            ++hits_;
            return e;
        }
        return static_cast<Entry*>(nullptr);
    }

    /// Makes room in the bucket array for one more entry (doubling it, 64 buckets at first).
    /// \returns false when there is no bucket array and upstream failed to give one; a failed
    /// doubling keeps the old array (longer chains), which is still room.
    bool reserve() noexcept
    {
        if (entries_ >= bucket_count_)
            grow_buckets();
        return buckets_ != nullptr;
    }

    /// Links a built entry in, pinned, as the newest. Counts a miss.
    /// \requires reserve() returned true since the last insert.
    void insert_pinned(Entry* e) noexcept
    {
        EVMALLOC_ASSERT(buckets_ != nullptr);
        Entry*& head = buckets_[e->bucket_hash & (bucket_count_ - 1)];
        e->chain = head;
        head = e;
        e->pins = 0;
        pin(e);
        push_newest(e);
        ++entries_;
        bytes_ += e->bytes;
        ++misses_;
    }

    /// Undoes find_and_pin() or insert_pinned() of a call that did not go ahead: unpins (the
    /// recency order stays), and an entry this call inserted that no other frame pins is
    /// removed, the miss uncounted.
    void abandon(Entry* e, bool inserted) noexcept
    {
        drop_pin(e);
        if (!inserted)
            --hits_;
        else if (e->pins == 0)
        {
            remove(e);
            --misses_;
        }
    }

    /// A frame that ran `e` is done with it: unpins, and `e` becomes the most recently used.
    /// \returns true when `e` is now unpinned.
    bool unpin(Entry* e) noexcept
    {
        if (e != newest_)
        {
            unlink(e);
            push_newest(e);
        }
        return drop_pin(e);
    }

    /// Frees the least recently used unpinned entries while `over()` says the budget is passed.
    template <class Over>
    void evict_while(Over&& over) noexcept
    {
        Entry* e = oldest_;
        while (e != nullptr && over())
        {
            Entry* const next = e->newer;
            if (e->pins == 0)
            {
                remove(e);
                ++evictions_;
            }
            e = next;
        }
    }

    /// Frees every unpinned entry.
    void clear() noexcept
    {
        evict_while([] { return true; });
    }

    [[nodiscard]] std::size_t entries() const noexcept { return entries_; }
    [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
    [[nodiscard]] std::size_t hits() const noexcept { return hits_; }
    [[nodiscard]] std::size_t misses() const noexcept { return misses_; }
    [[nodiscard]] std::size_t evictions() const noexcept { return evictions_; }
    [[nodiscard]] std::size_t pinned() const noexcept { return pinned_; }
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept
    {
        return upstream_.resource();
    }

    /// A new entry for `key`, built from upstream (not linked in): the code part, prepared for
    /// the code's real size (through `table` when the part takes one).
    /// \returns Errc::out_of_memory when upstream fails, or the error of the part's prepare()
    /// (for the built-in parts only code above Analysis::max_analysable_size, which the caches
    /// refuse before they get here); nothing is left allocated then.
    template <class... Table>
    Result<Entry*> build(const CacheKey& key, const Table&... table) noexcept
    {
        const std::size_t n = key.code.size();
        if (n > Analysis::max_analysable_size) [[unlikely]]
            return Errc::code_too_large;
        const std::size_t bytes = Entry::code_part_offset() + code_part_bytes<Traits>(n);
        void* const block = upstream_.try_allocate(bytes, frame_buffer_alignment);
        if (block == nullptr)
            return Errc::out_of_memory;
        Entry* const e = ::new (block) Entry{};
        e->bucket_hash = static_cast<std::uint32_t>(key.bucket_hash);
        e->table = key.table;
        e->code_size = static_cast<std::uint32_t>(n);
        e->trusted = key.hash != nullptr;
        if (key.hash != nullptr)
            e->code_hash = *key.hash;
        e->bytes = bytes;
        const auto view = prepare_code<Traits>(e->code_part(), key.code, table...);
        if (!view) [[unlikely]]
        {
            free_entry(e);
            return view.error();
        }
        e->view = *view;
        return e;
    }

    /// Frees an entry build() made that was never linked in.
    void free_entry(Entry* e) noexcept
    {
        const std::size_t bytes = e->bytes;
        e->~Entry();
        upstream_.deallocate(e, bytes, frame_buffer_alignment);
    }

private:
    bool same_code(const Entry* e, std::span<const std::uint8_t> code) const noexcept
    {
        return code.empty() || std::memcmp(e->view.code().data(), code.data(), code.size()) == 0;
    }

    void pin(Entry* e) noexcept
    {
        if (e->pins++ == 0)
            ++pinned_;
    }

    bool drop_pin(Entry* e) noexcept
    {
        EVMALLOC_ASSERT(e->pins != 0);
        if (--e->pins != 0)
            return false;
        --pinned_;
        return true;
    }

    void push_newest(Entry* e) noexcept
    {
        e->newer = nullptr;
        e->older = newest_;
        (newest_ != nullptr ? newest_->newer : oldest_) = e;
        newest_ = e;
    }

    Entry* unlink(Entry* e) noexcept
    {
        (e->older != nullptr ? e->older->newer : oldest_) = e->newer;
        (e->newer != nullptr ? e->newer->older : newest_) = e->older;
        return e;
    }

    void remove(Entry* e) noexcept
    {
        EVMALLOC_ASSERT(e->pins == 0);
        if (buckets_ != nullptr)
        {
            for (Entry** link = &buckets_[e->bucket_hash & (bucket_count_ - 1)]; *link != nullptr;
                 link = &(*link)->chain)
            {
                if (*link == e)
                {
                    *link = e->chain;
                    break;
                }
            }
        }
        unlink(e);
        --entries_;
        bytes_ -= e->bytes;
        free_entry(e);
    }

    // Doubles the bucket array (64 at first); keeps the old one when upstream fails.
    void grow_buckets() noexcept
    {
        const std::size_t count = bucket_count_ == 0 ? 64 : 2 * bucket_count_;
        auto* const fresh =
            static_cast<Entry**>(upstream_.try_allocate(count * sizeof(Entry*), alignof(Entry*)));
        if (fresh == nullptr)
            return;
        std::fill_n(fresh, count, nullptr);
        for (std::size_t b = 0; b < bucket_count_; ++b)
        {
            for (Entry* e = buckets_[b]; e != nullptr;)
            {
                Entry* const next = e->chain;
                Entry*& head = fresh[e->bucket_hash & (count - 1)];
                e->chain = head;
                head = e;
                e = next;
            }
        }
        if (buckets_ != nullptr)
            upstream_.deallocate(buckets_, bucket_count_ * sizeof(Entry*), alignof(Entry*));
        buckets_ = fresh;
        bucket_count_ = count;
    }

    Upstream upstream_;
    Entry** buckets_ = nullptr;
    std::size_t bucket_count_ = 0;
    Entry* newest_ = nullptr;
    Entry* oldest_ = nullptr;
    std::size_t entries_ = 0;
    std::size_t bytes_ = 0;
    std::size_t pinned_ = 0;
    std::size_t hits_ = 0;
    std::size_t misses_ = 0;
    std::size_t evictions_ = 0;
};

/// The bucket hash of a key: the trusted hash's first bytes or the verified fingerprint, mixed
/// with the table object and the kind of key.
inline std::uint64_t bucket_hash(std::uint64_t h, const void* table, bool trusted) noexcept
{
    return mix64(h ^ mix64(reinterpret_cast<std::uintptr_t>(table) ^ (trusted ? 1U : 0U)));
}

template <class Fingerprint>
CacheKey make_key(
    std::span<const std::uint8_t> code, const CodeHash* hash, const void* table) noexcept
{
    const std::uint64_t h = hash != nullptr ? load_le64(hash->bytes.data()) : Fingerprint{}(code);
    return {code, hash, table, bucket_hash(h, table, hash != nullptr)};
}

/// Table identity, the one place it is decided: the table object an entry is keyed by (and
/// compared with on a lookup) is its address, or nullptr for a part that takes no table.
inline const void* table_address() noexcept
{
    return nullptr;
}
template <class Table>
const void* table_address(const Table& table) noexcept
{
    return static_cast<const void*>(&table);
}

/// What a cache hands a frame: the entry, pinned, and whether this call inserted it.
template <class Traits>
struct PinnedEntry
{
    const CacheEntry<Traits>* entry;
    CachePin pin;
    bool inserted;
};
}  // namespace detail

/// Analyses shared by the frames of one thread (see the top of this header).
/// \tparam Fingerprint the verified key's hash (a callable on the code bytes); tests force
///         collisions with it.
template <class Traits = DefaultTraits, class Fingerprint = CodeFingerprint>
class AnalysisCache
{
public:
    /// \requires `upstream` outlives the cache; the cache outlives every frame that pins it
    /// (reported in debug builds).
    explicit AnalysisCache(Upstream upstream = std::pmr::new_delete_resource(),
        AnalysisCacheConfig config = {}) noexcept
      : core_{upstream}, config_{config}
    {
        EVMALLOC_ASSERT(upstream.resource() != nullptr);
    }

    /// Entries held (pinned or not).
    [[nodiscard]] std::size_t entries() const noexcept { return core_.entries(); }
    /// Bytes of the entries' blocks.
    [[nodiscard]] std::size_t bytes() const noexcept { return core_.bytes(); }
    [[nodiscard]] std::size_t hits() const noexcept { return core_.hits(); }
    [[nodiscard]] std::size_t misses() const noexcept { return core_.misses(); }
    [[nodiscard]] std::size_t evictions() const noexcept { return core_.evictions(); }
    /// Entries that live frames pin.
    [[nodiscard]] std::size_t pinned() const noexcept { return core_.pinned(); }
    [[nodiscard]] const AnalysisCacheConfig& config() const noexcept { return config_; }
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept { return core_.upstream(); }

    /// Drops every unpinned entry (pinned ones stay valid).
    void clear() noexcept { core_.clear(); }

    /// For StackFrame::init: the entry for the code, pinned; built on a miss.
    /// \returns Errc::code_too_large (code above Analysis::max_analysable_size, nothing read),
    /// Errc::code_hash_mismatch (trusted key, other code), Errc::out_of_memory (upstream failed;
    /// nothing inserted), or the error of the code part's prepare() (nothing inserted).
    template <class... Table>
    Result<detail::PinnedEntry<Traits>> pin(
        std::span<const std::uint8_t> code, const CodeHash* hash, const Table&... table) noexcept
    {
        if (code.size() > Analysis::max_analysable_size) [[unlikely]]
            return Errc::code_too_large;
        const detail::CacheKey key =
            detail::make_key<Fingerprint>(code, hash, detail::table_address(table...));
        const Result<Entry*> found = core_.find_and_pin(key);
        if (!found) [[unlikely]]
            return found.error();
        if (*found != nullptr) [[likely]]
            return detail::PinnedEntry<Traits>{*found, {*found, &unpin_entry}, false};
        if (!core_.reserve()) [[unlikely]]
            return Errc::out_of_memory;
        const Result<Entry*> built = core_.build(key, table...);
        if (!built) [[unlikely]]
            return built.error();
        Entry* const e = *built;
        core_.insert_pinned(e);
        e->owner = this;
        return detail::PinnedEntry<Traits>{e, {e, &unpin_entry}, true};
    }

    /// The frame went ahead: a new entry now counts against the budget.
    void commit(const detail::PinnedEntry<Traits>& p) noexcept
    {
        if (p.inserted)
            evict_over_budget();
    }

    /// The frame did not go ahead: as if pin() had not been called.
    void abandon(const detail::PinnedEntry<Traits>& p) noexcept
    {
        core_.abandon(const_cast<Entry*>(p.entry), p.inserted);
    }

private:
    using Entry = detail::CacheEntry<Traits>;

    static void unpin_entry(void* p) noexcept
    {
        Entry* const e = static_cast<Entry*>(p);
        auto* const self = static_cast<AnalysisCache*>(static_cast<void*>(e->owner));
        if (self->core_.unpin(e))
            self->evict_over_budget();
    }

    void evict_over_budget() noexcept
    {
        core_.evict_while([this] { return core_.bytes() > config_.max_bytes; });
    }

    detail::CacheCore<Traits> core_;
    AnalysisCacheConfig config_;
};

/// Analyses shared by frames on many threads (each thread with its own FramePool): the same
/// interface as AnalysisCache, in 16 shards chosen by the key's hash, each an AnalysisCache
/// engine under its own mutex, so hits on different threads do not serialise on one lock.
/// max_bytes is one budget for the whole cache (an atomic total), not one per shard.
/// Costs: a hit locks its shard twice (pin at init, unpin at release), the verified key's
/// hash is computed outside the lock; a miss builds its entry outside the lock, then inserts
/// it under the lock unless another thread inserted the same code meanwhile (then its entry
/// is used and the new one freed: one entry per code); eviction locks one shard at a time.
/// The counters are sums over the shards, read under each shard's lock.
/// \requires the upstream resource is thread-safe (new_delete_resource, or a Synchronized one).
template <class Traits = DefaultTraits, class Fingerprint = CodeFingerprint>
class ConcurrentAnalysisCache
{
public:
    static constexpr std::size_t shard_count = 16;

    /// \requires as AnalysisCache's.
    explicit ConcurrentAnalysisCache(Upstream upstream = std::pmr::new_delete_resource(),
        AnalysisCacheConfig config = {}) noexcept
      : shards_{make_shards(upstream, std::make_index_sequence<shard_count>{})}, config_{config}
    {
        EVMALLOC_ASSERT(upstream.resource() != nullptr);
        for (Shard& s : shards_)
            s.cache = this;
    }

    [[nodiscard]] std::size_t entries() const noexcept { return sum(&Core::entries); }
    [[nodiscard]] std::size_t bytes() const noexcept
    {
        return bytes_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::size_t hits() const noexcept { return sum(&Core::hits); }
    [[nodiscard]] std::size_t misses() const noexcept { return sum(&Core::misses); }
    [[nodiscard]] std::size_t evictions() const noexcept { return sum(&Core::evictions); }
    [[nodiscard]] std::size_t pinned() const noexcept { return sum(&Core::pinned); }
    [[nodiscard]] const AnalysisCacheConfig& config() const noexcept { return config_; }
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept
    {
        return shards_[0].core.upstream();
    }

    /// Drops every unpinned entry (pinned ones stay valid).
    void clear() noexcept
    {
        for (Shard& s : shards_)
        {
            const std::lock_guard lock{s.mutex};
            const std::size_t before = s.core.bytes();
            s.core.clear();
            bytes_.fetch_sub(before - s.core.bytes(), std::memory_order_relaxed);
        }
    }

    /// As AnalysisCache::pin.
    template <class... Table>
    Result<detail::PinnedEntry<Traits>> pin(
        std::span<const std::uint8_t> code, const CodeHash* hash, const Table&... table) noexcept
    {
        if (code.size() > Analysis::max_analysable_size) [[unlikely]]
            return Errc::code_too_large;
        const detail::CacheKey key =
            detail::make_key<Fingerprint>(code, hash, detail::table_address(table...));
        Shard& s = shards_[key.bucket_hash >> 60];
        {
            const std::lock_guard lock{s.mutex};
            const Result<Entry*> found = s.core.find_and_pin(key);
            if (!found) [[unlikely]]
                return found.error();
            if (*found != nullptr) [[likely]]
                return detail::PinnedEntry<Traits>{*found, {*found, &unpin_entry}, false};
        }
        const Result<Entry*> built = s.core.build(key, table...);  // outside the lock
        if (!built) [[unlikely]]
            return built.error();
        Entry* const e = *built;
        Result<Entry*> found = static_cast<Entry*>(nullptr);
        {
            const std::lock_guard lock{s.mutex};
            found = s.core.find_and_pin(key);  // another thread may have inserted it meanwhile
            if (found && *found == nullptr && !s.core.reserve()) [[unlikely]]
                found = Errc::out_of_memory;
            else if (found && *found == nullptr)
            {
                s.core.insert_pinned(e);
                e->owner = &s;
                bytes_.fetch_add(e->bytes, std::memory_order_relaxed);
                return detail::PinnedEntry<Traits>{e, {e, &unpin_entry}, true};
            }
        }
        s.core.free_entry(e);
        if (!found)
            return found.error();
        return detail::PinnedEntry<Traits>{*found, {*found, &unpin_entry}, false};
    }

    /// As AnalysisCache::commit.
    void commit(const detail::PinnedEntry<Traits>& p) noexcept
    {
        if (p.inserted)
            evict_over_budget(static_cast<Shard*>(p.entry->owner));
    }

    /// As AnalysisCache::abandon.
    void abandon(const detail::PinnedEntry<Traits>& p) noexcept
    {
        Shard& s = *static_cast<Shard*>(p.entry->owner);
        const std::lock_guard lock{s.mutex};
        const std::size_t before = s.core.bytes();
        s.core.abandon(const_cast<Entry*>(p.entry), p.inserted);
        bytes_.fetch_sub(before - s.core.bytes(), std::memory_order_relaxed);
    }

private:
    using Entry = detail::CacheEntry<Traits>;
    using Core = detail::CacheCore<Traits>;

    struct alignas(64) Shard
    {
        explicit Shard(Upstream upstream) noexcept : core{upstream} {}
        std::mutex mutex;
        Core core;
        ConcurrentAnalysisCache* cache = nullptr;
    };

    template <std::size_t... I>
    static std::array<Shard, shard_count> make_shards(
        Upstream upstream, std::index_sequence<I...>) noexcept
    {
        return {{Shard{((void)I, upstream)}...}};
    }

    std::size_t sum(std::size_t (Core::*counter)() const noexcept) const noexcept
    {
        std::size_t total = 0;
        for (Shard& s : shards_)
        {
            const std::lock_guard lock{s.mutex};
            total += (s.core.*counter)();
        }
        return total;
    }

    static void unpin_entry(void* p) noexcept
    {
        Entry* const e = static_cast<Entry*>(p);
        Shard& s = *static_cast<Shard*>(e->owner);
        bool unpinned = false;
        {
            const std::lock_guard lock{s.mutex};
            unpinned = s.core.unpin(e);
        }
        if (unpinned)
            s.cache->evict_over_budget(&s);
    }

    // Frees least recently used unpinned entries, this shard first, one shard locked at a time.
    void evict_over_budget(Shard* first) noexcept
    {
        const std::size_t start = static_cast<std::size_t>(first - shards_.data());
        for (std::size_t k = 0; k < shard_count; ++k)
        {
            if (bytes_.load(std::memory_order_relaxed) <= config_.max_bytes)
                return;
            Shard& s = shards_[(start + k) % shard_count];
            const std::lock_guard lock{s.mutex};
            const std::size_t before = s.core.bytes();
            s.core.evict_while([&] {
                return bytes_.load(std::memory_order_relaxed) - (before - s.core.bytes()) >
                       config_.max_bytes;
            });
            bytes_.fetch_sub(before - s.core.bytes(), std::memory_order_relaxed);
        }
    }

    mutable std::array<Shard, shard_count> shards_;
    AnalysisCacheConfig config_;
    std::atomic<std::size_t> bytes_{0};
};
}  // namespace evmalloc
