// Broken caller contracts end the process: the assertion handler reports, then the library
// aborts, even when an installed handler returns. One case per contract; built and run only
// where assertions are on (tests/CMakeLists.txt lists each case with the text it must print).
#include "death.hpp"

#include <evmalloc/buffer_pool.hpp>
#include <evmalloc/config.hpp>
#include <evmalloc/evm_allocator.hpp>
#include <evmalloc/frame_layout.hpp>
#include <evmalloc/frame_pool.hpp>
#include <evmalloc/instruction_array.hpp>
#include <evmalloc/memory.hpp>
#include <evmalloc/monotonic_arena.hpp>
#include <evmalloc/object_pool.hpp>
#include <evmalloc/result.hpp>
#include <evmalloc/stack.hpp>
#include <evmalloc/stack_frame.hpp>
#include <evmalloc/transaction_arena.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <new>
#include <span>
#include <utility>

#if !EVMALLOC_ENABLE_ASSERTS
#error "tests/death/contracts.cpp needs assertions on"
#endif

namespace
{
using evmalloc::Errc;
using evmalloc::Word;

// Prints what a case got back, so the call is not optimised away.
void show(const void* p)
{
    std::printf("%p\n", p);
}

constexpr Word w(std::uint64_t v) noexcept
{
    return Word::from(v);
}

// ---- config
void assert_fires()
{
    int evaluated = 1;
    EVMALLOC_ASSERT(evaluated == 2);
}

void handler_returns()
{
    evmalloc::set_assert_handler([](const char* what, const char*, int) noexcept {
        std::fprintf(stderr, "handler saw: %s\n", what);
    });
    int evaluated = 1;
    EVMALLOC_ASSERT(evaluated == 3);
}

// ---- Result
void result_error_of_value()
{
    const evmalloc::Result<int> r = 5;
    std::printf("%d\n", static_cast<int>(r.error()));
}

void result_deref_error()
{
    const evmalloc::Result<int> r = Errc::stack_overflow;
    std::printf("%d\n", *r);
}

// ---- Stack
struct StackStorage
{
    std::array<Word, evmalloc::Stack<>::capacity> words{};
    evmalloc::Stack<> stack{words};

    void fill(std::size_t n)
    {
        for (std::size_t i = 0; i < n; ++i)
            stack.push_unchecked(w(i));
    }
};

void stack_short_storage()
{
    std::array<Word, 4> small{};
    evmalloc::Stack<> stack{small};
    show(stack.data());
}
void stack_pop_unchecked_empty()
{
    StackStorage s;
    show(&(s.words[0] = s.stack.pop_unchecked()));
}
void stack_top_empty()
{
    StackStorage s;
    show(&s.stack.top());
}
void stack_peek_below()
{
    StackStorage s;
    s.fill(2);
    show(&s.stack.peek(2));
}
void stack_push_full()
{
    StackStorage s;
    s.fill(evmalloc::Stack<>::capacity);
    s.stack.push_unchecked(w(4));
}
void stack_dup_empty()
{
    StackStorage s;
    s.stack.dup(1);
}
void stack_dup17()
{
    StackStorage s;
    s.fill(17);
    s.stack.dup(17);
}
void stack_dup_full()
{
    StackStorage s;
    s.fill(evmalloc::Stack<>::capacity);
    s.stack.dup(1);
}
void stack_swap_short()
{
    StackStorage s;
    s.fill(2);
    s.stack.swap(2);
}
void stack_swap0()
{
    StackStorage s;
    s.fill(2);
    s.stack.swap(0);
}

// ---- pools
void buffer_pool_release_off_boundary()
{
    evmalloc::BufferPool<256> pool;
    std::byte* a = pool.acquire();
    pool.release(a + 1);
}
void buffer_pool_release_far()
{
    evmalloc::BufferPool<256> pool;
    std::byte* a = pool.acquire();
    pool.release(a + 256 * 100000);
}
void buffer_pool_double_release()
{
    evmalloc::BufferPool<256> pool;
    std::byte* a = pool.acquire();
    pool.release(a);
    pool.release(a);
}
void buffer_pool_try_acquire_double_release()
{
    evmalloc::BufferPool<256> pool;
    pool.release(pool.acquire());
    std::byte* a = static_cast<std::byte*>(pool.try_acquire());
    pool.release(a);
    pool.release(a);
}
void object_pool_double_release()
{
    evmalloc::ObjectPool<Word> pool;
    Word* a = pool.acquire();
    pool.release(a);
    pool.release(a);
}
void object_pool_release_local()
{
    evmalloc::ObjectPool<Word> pool;
    Word local{};
    pool.release(&local);
}
void object_pool_release_other_pools()
{
    evmalloc::ObjectPool<Word> pool;
    evmalloc::ObjectPool<Word> other;
    show(pool.acquire());
    pool.release(other.acquire());
}
void object_pool_release_nullptr()
{
    evmalloc::ObjectPool<Word> pool;
    show(pool.acquire());
    pool.release(nullptr);
}
void object_pool_release_inside_a_slot()
{
    evmalloc::ObjectPool<Word> pool;
    Word* mine = pool.acquire();
    pool.release(reinterpret_cast<Word*>(reinterpret_cast<std::byte*>(mine) + 16));
}
void object_pool_destroy_local()
{
    evmalloc::ObjectPool<Word> pool;
    Word local{};
    pool.destroy(&local);
}
void object_pool_destroy_twice()
{
    evmalloc::ObjectPool<Word> pool;
    Word* a = pool.create(w(1));
    pool.destroy(a);
    pool.destroy(a);
}

// ---- arenas
void monotonic_arena_foreign_deallocate()
{
    alignas(64) std::array<std::byte, 256> buffer{};
    evmalloc::MonotonicArena arena{buffer};
    Word local{};
    static_cast<std::pmr::memory_resource&>(arena).deallocate(&local, sizeof local, alignof(Word));
}
void transaction_arena_foreign_deallocate()
{
    evmalloc::TransactionArena arena{4096};
    Word local{};
    static_cast<std::pmr::memory_resource&>(arena).deallocate(&local, sizeof local, alignof(Word));
}

// ---- EvmAllocator
evmalloc::AllocatorConfig lazy_pools()
{
    evmalloc::AllocatorConfig c = evmalloc::AllocatorConfig::optimized();
    c.pool_preallocation_size = 0;
    c.enable_arena_allocation = false;
    return c;
}
void evm_allocator_other_pool_size()
{
    evmalloc::EvmAllocator a{lazy_pools()};
    void* p = a.allocate(24, 8);  // word pool
    a.deallocate(p, 200, 8);      // would go to the 256 pool
}
void evm_allocator_same_pool_other_size()
{
    evmalloc::EvmAllocator a{lazy_pools()};
    void* p = a.allocate(24, 8);
    a.deallocate(p, 28, 8);
}
void evm_allocator_other_alignment()
{
    evmalloc::EvmAllocator a{lazy_pools()};
    void* p = a.allocate(24, 8);
    a.deallocate(p, 24, 16);
}
void evm_allocator_upstream_block_other_size()
{
    evmalloc::EvmAllocator a{lazy_pools()};
    void* big = a.allocate(5000, 8);  // upstream
    a.deallocate(big, 4096, 8);       // would go to the 4096 pool
}
void evm_allocator_not_handed_out()
{
    evmalloc::EvmAllocator a{lazy_pools()};
    int local = 0;
    a.deallocate(&local, sizeof local, alignof(int));
}
void evm_allocator_deallocate_twice()
{
    evmalloc::EvmAllocator a{lazy_pools()};
    void* p = a.allocate(24, 8);
    a.deallocate(p, 24, 8);
    a.deallocate(p, 24, 8);
}

// ---- components and frames
void instruction_array_short_view()
{
    std::array<std::uint64_t, 4> storage{};
    const auto view = evmalloc::InstructionArray<std::uint64_t>::view(
        std::as_writable_bytes(std::span{storage}), 5);
    show(view.data());
}

struct AlignedBuffer
{
    explicit AlignedBuffer(std::size_t n)
      : data{static_cast<std::byte*>(::operator new (n, std::align_val_t{64}))}
    {}
    ~AlignedBuffer() { ::operator delete (data, std::align_val_t{64}); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    std::byte* data;
};
using Kb4Arena = evmalloc::FrameArena<evmalloc::Tier::kb4>;

void frame_arena_short_buffer()
{
    AlignedBuffer buffer{Kb4Arena::capacity};
    Kb4Arena arena{{buffer.data, Kb4Arena::capacity - 64}};
    show(&arena);
}
void frame_arena_misaligned_buffer()
{
    AlignedBuffer buffer{Kb4Arena::capacity + 64};
    Kb4Arena arena{{buffer.data + 8, Kb4Arena::capacity}};
    show(&arena);
}
void frame_arena_carve_twice()
{
    AlignedBuffer buffer{Kb4Arena::capacity};
    Kb4Arena arena{{buffer.data, Kb4Arena::capacity}};
    (void)arena.carve();
    (void)arena.carve();
}
void carve_frame_short_buffer()
{
    AlignedBuffer buffer{Kb4Arena::capacity};
    (void)evmalloc::carve_frame({buffer.data, Kb4Arena::capacity - 1}, evmalloc::Tier::kb4);
}
void memory_index_past_size()
{
    evmalloc::Memory m;
    if (m.expand(0, 32).has_value())
        show(&m[32]);
}

void stack_frame_ops_before_prepare()
{
    evmalloc::FramePool<> pool;
    auto frame = evmalloc::StackFrame<>::init(10, pool);
    if (frame.has_value())
        show(frame->ops().data());
}

// A frame moved from owns nothing: every use that needs its buffer or a prepared frame aborts.
template <class Use>
void use_moved_from_frame(Use use)
{
    evmalloc::FramePool<evmalloc::JumpdestTraits> pool;
    auto frame = evmalloc::StackFrame<evmalloc::JumpdestTraits>::init(10, pool);
    if (!frame.has_value())
        return;
    auto taken = std::move(*frame);
    show(&taken);
    use(*frame);
}
void stack_frame_prepare_moved_from()
{
    use_moved_from_frame([](auto& f) {
        const std::uint8_t code[] = {0x5B};
        show(f.prepare(code).has_value() ? &f : nullptr);
    });
}
void stack_frame_stack_moved_from()
{
    use_moved_from_frame([](auto& f) { show(f.stack().data()); });
}
void stack_frame_memory_moved_from()
{
    use_moved_from_frame([](auto& f) { show(f.memory().data()); });
}
void stack_frame_analysis_moved_from()
{
    use_moved_from_frame([](auto& f) { show(f.analysis().code().data()); });
}

constexpr evmalloc::test::DeathCase cases[] = {
    {"assert_fires", assert_fires},
    {"handler_returns", handler_returns},
    {"result_error_of_value", result_error_of_value},
    {"result_deref_error", result_deref_error},
    {"stack_short_storage", stack_short_storage},
    {"stack_pop_unchecked_empty", stack_pop_unchecked_empty},
    {"stack_top_empty", stack_top_empty},
    {"stack_peek_below", stack_peek_below},
    {"stack_push_full", stack_push_full},
    {"stack_dup_empty", stack_dup_empty},
    {"stack_dup17", stack_dup17},
    {"stack_dup_full", stack_dup_full},
    {"stack_swap_short", stack_swap_short},
    {"stack_swap0", stack_swap0},
    {"buffer_pool_release_off_boundary", buffer_pool_release_off_boundary},
    {"buffer_pool_release_far", buffer_pool_release_far},
    {"buffer_pool_double_release", buffer_pool_double_release},
    {"buffer_pool_try_acquire_double_release", buffer_pool_try_acquire_double_release},
    {"object_pool_double_release", object_pool_double_release},
    {"object_pool_release_local", object_pool_release_local},
    {"object_pool_release_other_pools", object_pool_release_other_pools},
    {"object_pool_release_nullptr", object_pool_release_nullptr},
    {"object_pool_release_inside_a_slot", object_pool_release_inside_a_slot},
    {"object_pool_destroy_local", object_pool_destroy_local},
    {"object_pool_destroy_twice", object_pool_destroy_twice},
    {"monotonic_arena_foreign_deallocate", monotonic_arena_foreign_deallocate},
    {"transaction_arena_foreign_deallocate", transaction_arena_foreign_deallocate},
    {"evm_allocator_other_pool_size", evm_allocator_other_pool_size},
    {"evm_allocator_same_pool_other_size", evm_allocator_same_pool_other_size},
    {"evm_allocator_other_alignment", evm_allocator_other_alignment},
    {"evm_allocator_upstream_block_other_size", evm_allocator_upstream_block_other_size},
    {"evm_allocator_not_handed_out", evm_allocator_not_handed_out},
    {"evm_allocator_deallocate_twice", evm_allocator_deallocate_twice},
    {"instruction_array_short_view", instruction_array_short_view},
    {"frame_arena_short_buffer", frame_arena_short_buffer},
    {"frame_arena_misaligned_buffer", frame_arena_misaligned_buffer},
    {"frame_arena_carve_twice", frame_arena_carve_twice},
    {"carve_frame_short_buffer", carve_frame_short_buffer},
    {"memory_index_past_size", memory_index_past_size},
    {"stack_frame_ops_before_prepare", stack_frame_ops_before_prepare},
    {"stack_frame_prepare_moved_from", stack_frame_prepare_moved_from},
    {"stack_frame_stack_moved_from", stack_frame_stack_moved_from},
    {"stack_frame_memory_moved_from", stack_frame_memory_moved_from},
    {"stack_frame_analysis_moved_from", stack_frame_analysis_moved_from},
};
}  // namespace

int main(int argc, char** argv)
{
    return evmalloc::test::run_death_case(cases, argc, argv);
}
