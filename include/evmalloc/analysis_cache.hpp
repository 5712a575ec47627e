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
// Keys. One entry per (key, TableId): the same code through another op table is another entry.
// A table is named by its TableId (table_id.hpp: its contents hashed, or an id the caller gives),
// never by its address, so a new table at a destroyed one's address cannot get the old one's
// entries; a part without a table (the jumpdest frame's) has TableId{}. Two ways to find code,
// whose entries never answer each other:
//   trusted   by the CodeHash the caller has (it promises it is the hash of exactly these
//             bytes): O(1) whatever the code size. An entry found under the hash with other code
//             is Errc::code_hash_mismatch: checked by the size and the first and last 32 bytes
//             in every build (debug builds compare every byte).
//   verified  by keyed_code_hash() of the bytes (XXH3 under a per-process random secret,
//             keyed_hash.hpp; or the Fingerprint given), and the bytes compared on every hit: a
//             collision costs a comparison, never a wrong analysis.
//
// Collisions cost a bounded amount. A verified lookup compares the bytes of at most
// CacheCore::max_compared (4) entries of the same bucket hash, size and table; past them it
// stops and the code is not admitted (it runs on the per-frame path, counted in not_admitted()).
// So a lookup's worst cost is one hash of the code and 4 comparisons of code.size() bytes (plus
// the bucket's other entries, rejected by their header's first line), whoever chose the codes.
//
// Admission (AnalysisCacheConfig::admission, admission.hpp). A miss asks the policy first:
// Admission::tiny_lfu (the default) admits a code when there is room, or when it was seen before
// and more often lately than the least recently used unpinned entry it would evict; a code seen
// once never displaces code called again. Admission::always is 0.2.0's plain LRU. A code not
// admitted runs on the per-frame path in the frame's own buffer: no entry is built, nothing is
// evicted, not_admitted() counts it.
//
// Costs (n = code size). A hit: the bucket, the entry's header, the pin: O(1) with a trusted
// key, O(n) hashing and comparing with a verified one (no allocation either way). An admitted
// miss: one upstream block and the analysis, as StackFrame::prepare; the bucket array doubles,
// on a miss, when the entries outnumber the buckets; the admission history (32 KiB) comes from
// upstream on the first miss. A miss changes nothing until its frame has its stack buffer
// (pin() builds and reserves, commit() links in): a call that fails leaves the cache exactly as
// it was, bucket array and history included. Recency is kept when a frame unpins its entry (it
// moves to the newest end of an intrusive list), so the hit itself writes only the pin count.
// Only unpinned entries need be on that list: eviction takes a pinned entry it meets off the
// list (it comes back, as the newest, when its last frame unpins it), so it never walks the same
// pinned entry twice and insert and unpin stay O(1) amortised whatever is pinned (also with
// max_bytes 0). Eviction frees exactly the least recently released unpinned entries.
//
// Budget: max_bytes bounds the entries' blocks. Over it, the least recently used unpinned
// entries go (at a miss, and when a frame unpins). A pinned entry is never freed and a full
// budget never fails a call: bytes() passes max_bytes only by entries that live frames pin.
// max_bytes 0 keeps nothing that no frame pins.
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

#include "admission.hpp"
#include "analysis.hpp"
#include "code_hash.hpp"
#include "config.hpp"
#include "frame_layout.hpp"
#include "keyed_hash.hpp"
#include "result.hpp"
#include "table_id.hpp"
#include "traits.hpp"
#include "upstream.hpp"

namespace evmalloc
{
struct AnalysisCacheConfig
{
    /// The budget of cached entries (analysis buffers, ops, metadata, the code copy, headers).
    std::size_t max_bytes = std::size_t{64} << 20;
    /// Which missed code gets an entry (admission.hpp): TinyLFU by default, so a code seen once
    /// does not displace code called again; Admission::always is 0.2.0's plain LRU.
    Admission admission = Admission::tiny_lfu;
};

/// The verified key's default hash: keyed_code_hash() (XXH3 under a per-process secret).
struct CodeFingerprint
{
    std::uint64_t operator()(std::span<const std::uint8_t> code) const noexcept
    {
        return keyed_code_hash(code);
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
    CacheEntry* chain;    ///< the next entry in the same bucket
    std::uint64_t table;  ///< the TableId's value; 0 for a part without a table
    CodeHash code_hash;   ///< trusted entries only
    std::uint32_t pins;   ///< frames alive that run it
    bool trusted;         ///< found by CodeHash (else by the bytes)
    // Bookkeeping written when a frame unpins (beside `pins`, which a hit writes anyway).
    std::uint8_t count;  ///< calls seen lately (the admission policy's frequency)
    std::uint8_t stamp;  ///< the admission epoch `count` was written in
    bool listed;         ///< on the recency list (every unpinned entry is; a pinned one may not be)
    // What a frame reads: the code part's view.
    typename FrameCodePart<Traits>::View view;
    // Bookkeeping.
    CacheEntry* newer;
    CacheEntry* older;
    std::size_t bytes;       ///< the whole block
    void* owner;             ///< the cache (shard) that unpins it
    std::uint64_t released;  ///< ConcurrentAnalysisCache: when it last became the newest

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
    std::uint64_t table;   ///< the TableId's value, 0 for a part without a table
    std::uint64_t bucket_hash;
};

/// What find_and_pin() found: the entry, pinned, or nullptr; `crowded` when the lookup stopped
/// at CacheCore::max_compared entries whose bytes it compared in vain (do not admit the code).
template <class Entry>
struct CacheLookup
{
    Entry* entry;
    bool crowded;
};

/// What a miss reserves before anything changes, for commit() to install (or abandon() to free):
/// a larger bucket array when the entries would outnumber the buckets, and the admission
/// history's storage on first use.
struct CacheReservation
{
    void* buckets = nullptr;
    std::size_t bucket_count = 0;
    void* history = nullptr;
};

/// What a cache hands a frame: the entry, pinned (nullptr: not admitted, the frame runs the
/// per-frame path), whether it is new (built by this call, linked in by commit()), and what
/// commit() installs.
template <class Traits>
struct PinnedEntry
{
    const CacheEntry<Traits>* entry;
    CachePin pin;
    bool inserted;
    std::uint32_t key;  ///< the bucket hash's low 32 bits (the admission history's key)
    CacheReservation reserved;
    std::span<const std::uint8_t> code;  ///< a new entry's key, for the concurrent re-lookup
    const CodeHash* hash;
    std::uint32_t shard;

    /// A hit on `e`, with `unpin` to let go of it.
    static PinnedEntry hit(const CacheEntry<Traits>* e, void (*unpin)(void*) noexcept) noexcept
    {
        return {e, {const_cast<CacheEntry<Traits>*>(e), unpin}, false, 0, {}, {}, nullptr, 0};
    }
    /// A miss of `key` in `shard`, nothing reserved yet.
    static PinnedEntry miss(const CacheKey& key, std::uint32_t shard) noexcept
    {
        return {nullptr, {}, false, static_cast<std::uint32_t>(key.bucket_hash), {}, key.code,
            key.hash, shard};
    }
};

/// The single-threaded engine of both caches: the bucket array, the recency list of unpinned
/// entries, the admission history, the counters. Every function is for one thread at a time
/// (ConcurrentAnalysisCache holds a lock around it).
/// Invariants: every unpinned entry is on the recency list (`listed`), in the order its last
/// frame released it; a pinned entry may be on it or not (eviction takes pinned entries it meets
/// off the list, each once per pinning, so eviction never walks the same pinned entry twice and
/// insert and unpin stay O(1) amortised whatever is pinned).
template <class Traits>
class CacheCore
{
public:
    using Entry = CacheEntry<Traits>;
    using Lookup = CacheLookup<Entry>;
    static_assert(Entry::lookup_fits_one_line(), "a lookup reads one cache line of an entry");

    /// The most entries a verified lookup compares the bytes of (same bucket hash, size, table):
    /// past them it stops, and the code is not admitted. A lookup's worst cost is therefore
    /// hashing the code once and max_compared comparisons of code.size() bytes.
    static constexpr std::size_t max_compared = 4;

    /// The least recently used unpinned entry's admission count, when there is one.
    struct Victim
    {
        bool present;
        std::uint8_t count;
    };

    /// No entry was released at this time (oldest_released() of an empty recency list).
    static constexpr std::uint64_t never = ~std::uint64_t{0};

    /// \param clock when given (ConcurrentAnalysisCache: one clock for every shard), each entry
    ///        that becomes the newest takes the next tick as its `released` time.
    CacheCore(Upstream upstream, Admission admission,
        std::atomic<std::uint64_t>* clock = nullptr) noexcept
      : upstream_{upstream}, admission_{admission}, clock_{clock}
    {}
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
        if (history_.storage() != nullptr)
            free_history(history_.storage());
    }

    /// The bytes of the entry for code of `n` bytes.
    static constexpr std::size_t entry_bytes(std::size_t n) noexcept
    {
        return Entry::code_part_offset() + code_part_bytes<Traits>(n);
    }

    /// The entry for `key`, pinned, or nullptr when there is none.
    /// \returns Errc::code_hash_mismatch when a trusted entry under key.hash has other code (its
    /// size, its first or last 32 bytes; in debug builds any byte).
    Result<Lookup> find_and_pin(const CacheKey& key) noexcept
    {
        if (buckets_ == nullptr)
            return Lookup{nullptr, false};
        std::size_t compared = 0;
        for (Entry* e = buckets_[key.bucket_hash & (bucket_count_ - 1)]; e != nullptr; e = e->chain)
        {
            if (e->bucket_hash != static_cast<std::uint32_t>(key.bucket_hash) ||
                e->table != key.table || e->trusted != (key.hash != nullptr))
                continue;
            if (key.hash != nullptr)
            {
                if (e->code_hash != *key.hash)
                    continue;
                if (e->code_size != key.code.size() ||
                    !(enable_asserts ? same_code(e, key.code) : same_ends(e, key.code)))
                    return Errc::code_hash_mismatch;
            }
            else if (e->code_size != key.code.size())
                continue;
            else if (!same_code(e, key.code))
            {
                if (++compared == max_compared)
                    return Lookup{nullptr, true};
                continue;
            }
            pin(e);
            ++hits_;
            return Lookup{e, false};
        }
        return Lookup{nullptr, false};
    }

    /// The verified key's lookup without the comparison (ConcurrentAnalysisCache compares
    /// outside its lock): pins the first max_compared entries whose header matches `key` (bucket
    /// hash, size, table) into `out` and counts a hit when there is one (a candidate that does
    /// not hold the bytes is given back by release_candidate(), the hit by uncount_hit()).
    /// Pinned entries are immutable, so matches() may read them without the lock.
    /// \returns how many it pinned. \requires key.hash == nullptr.
    std::size_t pin_candidates(const CacheKey& key, std::array<Entry*, max_compared>& out) noexcept
    {
        EVMALLOC_ASSERT(key.hash == nullptr);
        if (buckets_ == nullptr)
            return 0;
        std::size_t n = 0;
        for (Entry* e = buckets_[key.bucket_hash & (bucket_count_ - 1)];
             e != nullptr && n < max_compared; e = e->chain)
        {
            if (e->bucket_hash == static_cast<std::uint32_t>(key.bucket_hash) &&
                e->table == key.table && !e->trusted && e->code_size == key.code.size())
            {
                pin(e);
                out[n++] = e;
            }
        }
        hits_ += n != 0 ? 1 : 0;
        return n;
    }

    /// Gives back a candidate pin_candidates() pinned: unpinned, its recency unchanged.
    void release_candidate(Entry* e) noexcept
    {
        if (drop_pin(e) && !e->listed)
            push_newest(e);
    }

    /// Takes back the hit pin_candidates() counted when no candidate held the bytes.
    void uncount_hit() noexcept { --hits_; }

    /// True when entry `e` holds exactly `code` (its sizes are equal).
    static bool matches(const Entry* e, std::span<const std::uint8_t> code) noexcept
    {
        return code.empty() || std::memcmp(e->view.code().data(), code.data(), code.size()) == 0;
    }

    /// The least recently used unpinned entry's admission count (see Victim).
    Victim victim_count() noexcept
    {
        const Entry* const v = victim();
        return {v != nullptr, v != nullptr ? count_of(v) : std::uint8_t{0}};
    }

    /// The admission policy's decision for a missed code (key: its bucket hash's low 32 bits),
    /// when `over` says its entry would pass the budget and `v` is the entry it would evict.
    bool admit(std::uint32_t key, bool over, Victim v) const noexcept
    {
        if (admission_ == Admission::always || !over)
            return true;
        const auto candidate = static_cast<std::uint8_t>(history_.count(key) + 1);
        return admit_over(candidate, v.present, v.count);
    }

    /// As above, against this cache's own least recently used unpinned entry.
    bool admit(std::uint32_t key, bool over) noexcept
    {
        if (admission_ == Admission::always || !over)
            return true;
        return admit(key, over, victim_count());
    }

    /// The `released` time of the oldest entry on the recency list (it may be pinned), or
    /// `never` when the list is empty. Only with a clock.
    [[nodiscard]] std::uint64_t oldest_released() const noexcept
    {
        return oldest_ != nullptr ? oldest_->released : never;
    }

    /// Frees the least recently used unpinned entry (pinned ones met on the way leave the list).
    /// \returns the bytes it freed, 0 when no entry is unpinned.
    std::size_t evict_oldest() noexcept
    {
        Entry* const e = victim();
        if (e == nullptr)
            return 0;
        const std::size_t freed = e->bytes;
        history_.remember(e->bucket_hash, count_of(e));
        remove(e);
        ++evictions_;
        return freed;
    }

    /// The `released` time of the least recently used unpinned entry, or `never`.
    std::uint64_t victim_released() noexcept
    {
        const Entry* const v = victim();
        return v != nullptr ? v->released : never;
    }

    /// Reserves what inserting one more entry needs (see CacheReservation).
    /// \returns false when upstream failed (nothing reserved).
    bool reserve(CacheReservation& r, bool insert) noexcept
    {
        if (admission_ != Admission::always && history_.storage() == nullptr)
        {
            r.history =
                upstream_.try_allocate(AdmissionHistory::storage_bytes, alignof(std::uint64_t));
            if (r.history == nullptr && insert)
                return false;  // a call not admitted runs without the history
        }
        if (insert && entries_ >= bucket_count_)
        {
            r.bucket_count = bucket_count_ == 0 ? 64 : 2 * bucket_count_;
            r.buckets = upstream_.try_allocate(r.bucket_count * sizeof(Entry*), alignof(Entry*));
            if (r.buckets == nullptr)
            {
                if (buckets_ != nullptr)
                    r.bucket_count = 0;  // the old array is still room (longer chains)
                else
                {
                    release(r);
                    return false;
                }
            }
        }
        return true;
    }

    /// Gives back what reserve() reserved and commit_reservation() did not install.
    void release(CacheReservation& r) noexcept
    {
        if (r.buckets != nullptr)
            upstream_.deallocate(r.buckets, r.bucket_count * sizeof(Entry*), alignof(Entry*));
        if (r.history != nullptr)
            free_history(r.history);
        r = {};
    }

    /// Installs what reserve() reserved, where still needed (the rest is given back).
    void install(CacheReservation& r) noexcept
    {
        if (r.history != nullptr && history_.storage() == nullptr)
        {
            history_.attach(r.history);
            r.history = nullptr;
        }
        if (r.buckets != nullptr && r.bucket_count > bucket_count_)
        {
            rehash_into(static_cast<Entry**>(r.buckets), r.bucket_count);
            r.buckets = nullptr;
        }
        release(r);
    }

    /// A larger bucket array when the entries outnumber the buckets, if upstream gives one (for
    /// an insert whose reservation another thread's insert used up; the old array stays room).
    void grow_if_crowded() noexcept
    {
        if (buckets_ == nullptr || entries_ < bucket_count_)
            return;
        CacheReservation r;
        r.bucket_count = 2 * bucket_count_;
        r.buckets = upstream_.try_allocate(r.bucket_count * sizeof(Entry*), alignof(Entry*));
        if (r.buckets == nullptr)
            r.bucket_count = 0;
        install(r);
    }

    /// Links a built entry in, pinned, as the newest. Counts a miss.
    /// \requires install() gave the cache a bucket array.
    void insert_pinned(Entry* e) noexcept
    {
        EVMALLOC_ASSERT(buckets_ != nullptr);
        Entry*& head = buckets_[e->bucket_hash & (bucket_count_ - 1)];
        e->chain = head;
        head = e;
        e->pins = 0;
        pin(e);
        push_newest(e);
        e->count = static_cast<std::uint8_t>(history_.take(e->bucket_hash));
        e->stamp = history_.epoch();
        ++entries_;
        bytes_ += e->bytes;
        ++misses_;
    }

    /// A call not admitted ran on the per-frame path.
    void record_not_admitted(std::uint32_t key) noexcept
    {
        ++not_admitted_;
        if (admission_ != Admission::always)
            history_.record(key);
    }

    /// Undoes find_and_pin() of a call that did not go ahead: unpins (the recency order stays),
    /// the hit uncounted.
    void abandon_hit(Entry* e) noexcept
    {
        if (drop_pin(e) && !e->listed)
            push_newest(e);
        --hits_;
    }

    /// A frame that ran `e` is done with it: unpins, counts the call, and `e` becomes the most
    /// recently used. \returns true when `e` is now unpinned.
    bool unpin(Entry* e) noexcept
    {
        const std::uint8_t n = count_of(e);
        e->count = static_cast<std::uint8_t>(n + (n < AdmissionHistory::max_count ? 1 : 0));
        e->stamp = history_.epoch();
        history_.tick();
        if (e->listed)
        {
            if (e != newest_)
            {
                unlink(e);
                push_newest(e);
            }
            else
                tick_released(e);
        }
        const bool last = drop_pin(e);
        if (last && !e->listed)
            push_newest(e);
        return last;
    }

    /// Frees the least recently used unpinned entries while `over()` says the budget is passed.
    template <class Over>
    void evict_while(Over&& over) noexcept
    {
        while (over() && evict_oldest() != 0)
        {}
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
    [[nodiscard]] std::size_t not_admitted() const noexcept { return not_admitted_; }
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
        e->released = never;  // no tick yet (the clock starts at 1: never + 1 is no tick)
        const auto view = prepare_code<Traits>(e->code_part(), key.code, table...);
        if (!view) [[unlikely]]
        {
            free_entry(e);
            return view.error();
        }
        e->view = *view;
        return e;
    }

    /// An admitted miss: builds the entry for `key` into `p` (owned by `owner`, let go through
    /// `release_pin`), not linked in. \returns build()'s error when it fails (what `p` reserved is
    /// given back). Touches no shared state but the upstream: callable without the cache's lock.
    template <class... Table>
    Result<void> build_new(PinnedEntry<Traits>& p, const CacheKey& key, void* owner,
        void (*release_pin)(void*) noexcept, const Table&... table) noexcept
    {
        const Result<Entry*> built = build(key, table...);
        if (!built) [[unlikely]]
        {
            release(p.reserved);
            return built.error();
        }
        Entry* const e = *built;
        e->owner = owner;
        p.entry = e;
        p.pin = {e, release_pin};
        p.inserted = true;
        return {};
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
        return matches(e, code);
    }

    // `e` becomes the newest: it takes the clock's next tick, unless it holds the last one taken
    // (nothing was released since, anywhere: it is still the newest of the whole cache), so a
    // hot entry released again and again leaves the clock's cache line unwritten.
    void tick_released(Entry* e) noexcept
    {
        if (clock_ != nullptr && e->released + 1 != clock_->load(std::memory_order_relaxed))
            e->released = clock_->fetch_add(1, std::memory_order_relaxed);
    }

    // The trusted key's release-build check: the first and the last 32 bytes (the size is
    // checked before). \requires e->code_size == code.size().
    bool same_ends(const Entry* e, std::span<const std::uint8_t> code) const noexcept
    {
        const std::size_t n = std::min<std::size_t>(code.size(), 32);
        const std::uint8_t* const kept = e->view.code().data();
        return n == 0 ||
               (std::memcmp(kept, code.data(), n) == 0 &&
                   std::memcmp(kept + code.size() - n, code.data() + code.size() - n, n) == 0);
    }

    std::uint8_t count_of(const Entry* e) const noexcept
    {
        return aged_count(e->count, e->stamp, history_.epoch());
    }

    // The least recently used unpinned entry (pinned ones met at the old end leave the list).
    Entry* victim() noexcept
    {
        while (oldest_ != nullptr && oldest_->pins != 0)
            unlink(oldest_);
        return oldest_;
    }

    void free_history(void* storage) noexcept
    {
        upstream_.deallocate(storage, AdmissionHistory::storage_bytes, alignof(std::uint64_t));
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
        tick_released(e);
        e->newer = nullptr;
        e->older = newest_;
        (newest_ != nullptr ? newest_->newer : oldest_) = e;
        newest_ = e;
        e->listed = true;
    }

    Entry* unlink(Entry* e) noexcept
    {
        (e->older != nullptr ? e->older->newer : oldest_) = e->newer;
        (e->newer != nullptr ? e->newer->older : newest_) = e->older;
        e->newer = e->older = nullptr;
        e->listed = false;
        return e;
    }

    void remove(Entry* e) noexcept
    {
        EVMALLOC_ASSERT(e->pins == 0);
        for (Entry** link = &buckets_[e->bucket_hash & (bucket_count_ - 1)]; *link != nullptr;
             link = &(*link)->chain)
        {
            if (*link == e)
            {
                *link = e->chain;
                break;
            }
        }
        if (e->listed)
            unlink(e);
        --entries_;
        bytes_ -= e->bytes;
        free_entry(e);
    }

    // Moves every entry into `fresh` (count buckets) and frees the old array.
    void rehash_into(Entry** fresh, std::size_t count) noexcept
    {
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
    Admission admission_;
    std::atomic<std::uint64_t>* clock_;
    Entry** buckets_ = nullptr;
    std::size_t bucket_count_ = 0;
    Entry* newest_ = nullptr;
    Entry* oldest_ = nullptr;
    AdmissionHistory history_;
    std::size_t entries_ = 0;
    std::size_t bytes_ = 0;
    std::size_t pinned_ = 0;
    std::size_t hits_ = 0;
    std::size_t misses_ = 0;
    std::size_t evictions_ = 0;
    std::size_t not_admitted_ = 0;
};

/// The bucket hash of a key: the trusted hash's first bytes or the verified fingerprint, mixed
/// with the table's id and the kind of key.
inline std::uint64_t bucket_hash(std::uint64_t h, TableId table, bool trusted) noexcept
{
    return mix64(h ^ mix64(table.value ^ (trusted ? 1U : 0U)));
}

template <class Fingerprint>
CacheKey make_key(std::span<const std::uint8_t> code, const CodeHash* hash, TableId table) noexcept
{
    const std::uint64_t h = hash != nullptr ? load_le64(hash->bytes.data()) : Fingerprint{}(code);
    return {code, hash, table.value, bucket_hash(h, table, hash != nullptr)};
}
}  // namespace detail

/// Analyses shared by the frames of one thread (see the top of this header).
/// \tparam Fingerprint the verified key's hash (a callable on the code bytes); tests force
///         collisions with it.
template <class Traits = DefaultTraits, class Fingerprint = CodeFingerprint>
class AnalysisCache
{
public:
    using Entry = detail::CacheEntry<Traits>;

    /// \requires `upstream` outlives the cache; the cache outlives every frame that pins it
    /// (reported in debug builds).
    explicit AnalysisCache(Upstream upstream = std::pmr::new_delete_resource(),
        AnalysisCacheConfig config = {}) noexcept
      : core_{upstream, config.admission}, config_{config}
    {
        EVMALLOC_ASSERT(upstream.resource() != nullptr);
    }

    /// Entries held (pinned or not).
    [[nodiscard]] std::size_t entries() const noexcept { return core_.entries(); }
    /// Bytes of the entries' blocks.
    [[nodiscard]] std::size_t bytes() const noexcept { return core_.bytes(); }
    [[nodiscard]] std::size_t hits() const noexcept { return core_.hits(); }
    /// Misses that were admitted (an entry was built).
    [[nodiscard]] std::size_t misses() const noexcept { return core_.misses(); }
    [[nodiscard]] std::size_t evictions() const noexcept { return core_.evictions(); }
    /// Calls that ran on the per-frame path: not admitted by the policy, or past max_compared.
    [[nodiscard]] std::size_t not_admitted() const noexcept { return core_.not_admitted(); }
    /// Entries that live frames pin.
    [[nodiscard]] std::size_t pinned() const noexcept { return core_.pinned(); }
    [[nodiscard]] const AnalysisCacheConfig& config() const noexcept { return config_; }
    [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept { return core_.upstream(); }

    /// Drops every unpinned entry (pinned ones stay valid).
    void clear() noexcept { core_.clear(); }

    /// For StackFrame::init: the entry for the code, pinned (a hit), or built and not yet linked
    /// in (an admitted miss: commit() links it), or none (not admitted: the frame runs the
    /// per-frame path and calls commit() once it did). Nothing observable changes before
    /// commit(); abandon() gives back what pin() took. `table_id` names `table` (TableId{} and
    /// no table for a part that takes none); the entry is keyed by it.
    /// \returns Errc::code_too_large (code above Analysis::max_analysable_size, nothing read),
    /// Errc::code_hash_mismatch (trusted key, other code), Errc::out_of_memory (upstream failed;
    /// nothing changed), or the error of the code part's prepare() (nothing changed).
    template <class... Table>
    Result<detail::PinnedEntry<Traits>> pin(std::span<const std::uint8_t> code,
        const CodeHash* hash, TableId table_id, const Table&... table) noexcept
    {
        if (code.size() > Analysis::max_analysable_size) [[unlikely]]
            return Errc::code_too_large;
        const detail::CacheKey key = detail::make_key<Fingerprint>(code, hash, table_id);
        const Result<detail::CacheLookup<Entry>> found = core_.find_and_pin(key);
        if (!found) [[unlikely]]
            return found.error();
        if (found->entry != nullptr) [[likely]]
            return detail::PinnedEntry<Traits>::hit(found->entry, &unpin_entry);
        detail::PinnedEntry<Traits> p = detail::PinnedEntry<Traits>::miss(key, 0);
        const bool admit =
            !found->crowded &&
            core_.admit(p.key, core_.bytes() + Core::entry_bytes(code.size()) > config_.max_bytes);
        if (!core_.reserve(p.reserved, admit)) [[unlikely]]
            return Errc::out_of_memory;
        if (!admit)
            return p;
        if (const Result<void> built = core_.build_new(p, key, this, &unpin_entry, table...);
            !built) [[unlikely]]
            return built.error();
        return p;
    }

    /// The frame went ahead: a new entry is linked in (and counts against the budget), a call not
    /// admitted is counted. \returns the entry the frame runs (nullptr: not admitted).
    const Entry* commit(detail::PinnedEntry<Traits>& p) noexcept
    {
        if (!p.inserted) [[likely]]
        {
            if (p.entry == nullptr)
            {
                core_.install(p.reserved);
                core_.record_not_admitted(p.key);
            }
            return p.entry;
        }
        Entry* const e = const_cast<Entry*>(p.entry);
        core_.install(p.reserved);
        core_.insert_pinned(e);
        evict_over_budget();
        return e;
    }

    /// The frame did not go ahead: as if pin() had not been called.
    void abandon(detail::PinnedEntry<Traits>& p) noexcept
    {
        core_.release(p.reserved);
        if (p.inserted)
            core_.free_entry(const_cast<Entry*>(p.entry));
        else if (p.entry != nullptr)
            core_.abandon_hit(const_cast<Entry*>(p.entry));
    }

private:
    using Core = detail::CacheCore<Traits>;

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

    Core core_;
    AnalysisCacheConfig config_;
};

/// Analyses shared by frames on many threads (each thread with its own FramePool): the same
/// interface as AnalysisCache, in 16 shards chosen by the key's hash, each a cache engine under
/// its own mutex, so hits on different threads do not serialise on one lock.
///
/// One budget, one LRU order. max_bytes bounds the whole cache (an atomic total). Every entry
/// takes a tick of one clock whenever it becomes the newest of its shard, so each shard's
/// recency list is in clock order; each shard publishes its oldest entry's tick, and eviction
/// frees the entry with the smallest tick among the shards' least recently used unpinned
/// entries: exactly the least recently released unpinned entry of the whole cache (among
/// concurrent releases, in the order their ticks were taken). Admission (tiny_lfu) compares a
/// missed code against that same entry. Eviction never walks a pinned entry twice (as
/// AnalysisCache's).
///
/// Costs. A trusted hit locks its shard twice (pin at init, unpin at release) and compares the
/// size and 64 bytes under the lock. A verified hit hashes the code outside the lock, pins the
/// entries whose header matches (at most max_compared) under it, and compares their bytes
/// outside it, so threads running one hot contract hold the lock for O(1) work, not O(n); a
/// second lock only when a candidate did not hold the bytes. A miss decides admission (locking
/// the shard of the entry it would evict, alone), builds its entry outside any lock, then
/// inserts it under the lock at commit() unless another thread inserted the same code meanwhile
/// (then that entry is used and the new one freed: one entry per code; telling the two apart
/// compares bytes under the lock, which only such a race or a collision of the keyed hash
/// reaches). Eviction, per entry freed: 16 relaxed loads and one shard's lock. The counters are
/// sums over the shards, read under each shard's lock.
/// \requires the upstream resource is thread-safe (new_delete_resource, or a Synchronized one).
template <class Traits = DefaultTraits, class Fingerprint = CodeFingerprint>
class ConcurrentAnalysisCache
{
public:
    using Entry = detail::CacheEntry<Traits>;

    static constexpr std::size_t shard_count = 16;

    /// \requires as AnalysisCache's.
    explicit ConcurrentAnalysisCache(Upstream upstream = std::pmr::new_delete_resource(),
        AnalysisCacheConfig config = {}) noexcept
      : shards_{make_shards(
            upstream, config.admission, &clock_, std::make_index_sequence<shard_count>{})},
        config_{config}
    {
        EVMALLOC_ASSERT(upstream.resource() != nullptr);
    }

    [[nodiscard]] std::size_t entries() const noexcept { return sum(&Core::entries); }
    [[nodiscard]] std::size_t bytes() const noexcept
    {
        return bytes_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::size_t hits() const noexcept { return sum(&Core::hits); }
    [[nodiscard]] std::size_t misses() const noexcept { return sum(&Core::misses); }
    [[nodiscard]] std::size_t evictions() const noexcept { return sum(&Core::evictions); }
    [[nodiscard]] std::size_t not_admitted() const noexcept { return sum(&Core::not_admitted); }
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
            publish(s);
        }
    }

    /// As AnalysisCache::pin.
    template <class... Table>
    Result<detail::PinnedEntry<Traits>> pin(std::span<const std::uint8_t> code,
        const CodeHash* hash, TableId table_id, const Table&... table) noexcept
    {
        if (code.size() > Analysis::max_analysable_size) [[unlikely]]
            return Errc::code_too_large;
        const detail::CacheKey key = detail::make_key<Fingerprint>(code, hash, table_id);
        const auto shard = static_cast<std::uint32_t>(key.bucket_hash >> 60);
        Shard& s = shards_[shard];
        bool crowded = false;
        if (hash != nullptr)
        {
            const std::lock_guard lock{s.mutex};
            const Result<detail::CacheLookup<Entry>> found = s.core.find_and_pin(key);
            if (!found) [[unlikely]]
                return found.error();
            if (found->entry != nullptr) [[likely]]
                return detail::PinnedEntry<Traits>::hit(found->entry, &unpin_entry);
        }
        else
        {
            const Entry* const hit = find_verified(s, key, crowded);
            if (hit != nullptr) [[likely]]
                return detail::PinnedEntry<Traits>::hit(hit, &unpin_entry);
        }
        detail::PinnedEntry<Traits> p = detail::PinnedEntry<Traits>::miss(key, shard);
        const bool over = bytes() + Core::entry_bytes(code.size()) > config_.max_bytes;
        const typename Core::Victim victim =
            !crowded && over && config_.admission != Admission::always
                ? global_victim()
                : typename Core::Victim{false, 0};
        bool admit = false;
        {
            const std::lock_guard lock{s.mutex};
            admit = !crowded && s.core.admit(p.key, over, victim);
            if (!s.core.reserve(p.reserved, admit)) [[unlikely]]
                return Errc::out_of_memory;
        }
        if (!admit)
            return p;
        if (const Result<void> built = s.core.build_new(p, key, &s, &unpin_entry, table...); !built)
            [[unlikely]]  // unlocked
            return built.error();
        return p;
    }

    /// As AnalysisCache::commit.
    const Entry* commit(detail::PinnedEntry<Traits>& p) noexcept
    {
        if (!p.inserted) [[likely]]
        {
            if (p.entry == nullptr)
            {
                Shard& s = shards_[p.shard];
                const std::lock_guard lock{s.mutex};
                s.core.install(p.reserved);
                s.core.record_not_admitted(p.key);
            }
            return p.entry;
        }
        Entry* const e = const_cast<Entry*>(p.entry);
        Shard& s = *static_cast<Shard*>(e->owner);
        Entry* other = nullptr;
        {
            const std::lock_guard lock{s.mutex};
            // Another thread may have inserted the same code meanwhile: then its entry is used.
            const detail::CacheKey key{p.code, p.hash, e->table, e->bucket_hash};
            const Result<detail::CacheLookup<Entry>> found = s.core.find_and_pin(key);
            s.core.install(p.reserved);
            if (found && found->entry != nullptr)
                other = found->entry;
            else
            {
                s.core.grow_if_crowded();
                s.core.insert_pinned(e);
                bytes_.fetch_add(e->bytes, std::memory_order_relaxed);
                publish(s);
            }
        }
        if (other != nullptr)
        {
            s.core.free_entry(e);
            p.pin = {other, &unpin_entry};
            return other;
        }
        evict_over_budget();
        return e;
    }

    /// As AnalysisCache::abandon.
    void abandon(detail::PinnedEntry<Traits>& p) noexcept
    {
        if (p.inserted || p.entry == nullptr)
        {
            Core& core = shards_[p.shard].core;  // upstream calls only: no lock
            core.release(p.reserved);
            if (p.inserted)
                core.free_entry(const_cast<Entry*>(p.entry));
            return;
        }
        Shard& s = *static_cast<Shard*>(p.entry->owner);
        const std::lock_guard lock{s.mutex};
        s.core.abandon_hit(const_cast<Entry*>(p.entry));
        publish(s);
    }

private:
    using Core = detail::CacheCore<Traits>;

    struct alignas(64) Shard
    {
        Shard(Upstream upstream, Admission admission, std::atomic<std::uint64_t>* clock,
            ConcurrentAnalysisCache* owner) noexcept
          : core{upstream, admission, clock}, cache{owner}
        {}
        std::mutex mutex;
        Core core;
        ConcurrentAnalysisCache* cache;
        /// core.oldest_released(), published under the lock for eviction to read without it.
        std::atomic<std::uint64_t> oldest{Core::never};
    };

    template <std::size_t... I>
    std::array<Shard, shard_count> make_shards(Upstream upstream, Admission admission,
        std::atomic<std::uint64_t>* clock, std::index_sequence<I...>) noexcept
    {
        return {{Shard{((void)I, upstream), admission, clock, this}...}};
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

    /// \requires s.mutex held.
    static void publish(Shard& s) noexcept
    {
        s.oldest.store(s.core.oldest_released(), std::memory_order_relaxed);
    }

    // The verified lookup, its comparisons outside the lock. \returns the entry, pinned, or
    // nullptr (`crowded`: max_compared candidates, none with the bytes).
    static const Entry* find_verified(Shard& s, const detail::CacheKey& key, bool& crowded) noexcept
    {
        std::array<Entry*, Core::max_compared> candidates{};
        std::size_t n = 0;
        {
            const std::lock_guard lock{s.mutex};
            n = s.core.pin_candidates(key, candidates);
        }
        Entry* match = nullptr;
        for (std::size_t i = 0; i < n && match == nullptr; ++i)
        {
            if (Core::matches(candidates[i], key.code))  // pinned: immutable, read unlocked
                match = candidates[i];
        }
        if (n > (match != nullptr ? 1U : 0U))
        {
            const std::lock_guard lock{s.mutex};
            for (std::size_t i = 0; i < n; ++i)
            {
                if (candidates[i] != match)
                    s.core.release_candidate(candidates[i]);
            }
            if (match == nullptr)
                s.core.uncount_hit();
            publish(s);
        }
        crowded = match == nullptr && n == Core::max_compared;
        return match;
    }

    // The shard whose published oldest tick is the smallest, and that tick (nullptr: every
    // shard's recency list is empty).
    std::pair<Shard*, std::uint64_t> oldest_shard() noexcept
    {
        Shard* best = nullptr;
        std::uint64_t tick = Core::never;
        for (Shard& s : shards_)
        {
            const std::uint64_t t = s.oldest.load(std::memory_order_relaxed);
            if (t < tick)
            {
                tick = t;
                best = &s;
            }
        }
        return {best, tick};
    }

    // The cache's least recently used unpinned entry's admission count: the shard with the
    // oldest tick, locked alone; looked at again when its oldest entry was pinned or changed.
    typename Core::Victim global_victim() noexcept
    {
        for (;;)
        {
            const auto [s, tick] = oldest_shard();
            if (s == nullptr)
                return {false, 0};
            const std::lock_guard lock{s->mutex};
            const bool current = s->core.victim_released() == tick;
            publish(*s);
            if (current)
                return s->core.victim_count();
        }
    }

    // Frees the cache's least recently used unpinned entries while the budget is passed.
    void evict_over_budget() noexcept
    {
        while (bytes_.load(std::memory_order_relaxed) > config_.max_bytes)
        {
            const auto [s, tick] = oldest_shard();
            if (s == nullptr)
                return;
            const std::lock_guard lock{s->mutex};
            if (s->core.victim_released() == tick)
                bytes_.fetch_sub(s->core.evict_oldest(), std::memory_order_relaxed);
            publish(*s);
        }
    }

    static void unpin_entry(void* p) noexcept
    {
        Entry* const e = static_cast<Entry*>(p);
        Shard& s = *static_cast<Shard*>(e->owner);
        bool unpinned = false;
        {
            const std::lock_guard lock{s.mutex};
            unpinned = s.core.unpin(e);
            publish(s);
        }
        if (unpinned)
            s.cache->evict_over_budget();
    }

    std::atomic<std::uint64_t> clock_{1};  // CacheCore::tick_released: never + 1 is not a tick
    mutable std::array<Shard, shard_count> shards_;
    AnalysisCacheConfig config_;
    std::atomic<std::size_t> bytes_{0};
};
}  // namespace evmalloc
