#include "ps/key_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <unordered_map>

#include "ps/row_arena.h"

namespace deepfm::ps {
namespace {

TEST(KeyIndexTest, MatchesAReferenceMapUnderInsertAndErase) {
  KeyIndex index;
  std::unordered_map<uint64_t, uint32_t> ref;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t key = rng() % 5000;  // small key space: many hits and erases
    if (rng() % 3 == 0) {
      const uint32_t got = index.Erase(key);
      auto it = ref.find(key);
      ASSERT_EQ(got, it == ref.end() ? KeyIndex::kEmpty : it->second);
      if (it != ref.end()) ref.erase(it);
    } else if (index.Find(key) == KeyIndex::kEmpty) {
      index.Insert(key, static_cast<uint32_t>(i));
      ref[key] = static_cast<uint32_t>(i);
    }
    ASSERT_EQ(index.size(), ref.size());
  }
  for (const auto& [k, v] : ref) ASSERT_EQ(index.Find(k), v);
  size_t seen = 0;
  index.ForEach([&](uint64_t k, uint32_t v) {
    ++seen;
    EXPECT_EQ(ref.at(k), v);
  });
  EXPECT_EQ(seen, ref.size());
}

// Growth spreads its moves over the inserts after a doubling; every
// operation in between must still see exactly the reference map, including
// erases of keys not yet moved and keys already moved.
TEST(KeyIndexTest, MatchesAReferenceMapWhileGrowing) {
  KeyIndex index;
  std::unordered_map<uint64_t, uint32_t> ref;
  std::mt19937_64 rng(7);
  int ops_while_growing = 0;
  for (int i = 0; i < 300000; ++i) {
    const uint64_t key = rng() % 400000;  // grows to ~2^18 slots with erases mixed in
    const int op = static_cast<int>(rng() % 8);
    if (op == 0) {
      const uint32_t got = index.Erase(key);
      auto it = ref.find(key);
      ASSERT_EQ(got, it == ref.end() ? KeyIndex::kEmpty : it->second) << "op " << i;
      if (it != ref.end()) ref.erase(it);
    } else if (op == 1 && index.Update(key, [](uint32_t* v) { *v += 1; })) {
      ref.at(key) += 1;
    } else if (index.Find(key) == KeyIndex::kEmpty) {
      index.Insert(key, static_cast<uint32_t>(i));
      ref[key] = static_cast<uint32_t>(i);
    } else {
      ASSERT_EQ(index.Find(key), ref.at(key)) << "op " << i;
    }
    ASSERT_EQ(index.size(), ref.size());
    if (index.growing()) ++ops_while_growing;
    if (index.growing() && i % 997 == 0) {
      size_t seen = 0;
      index.ForEach([&](uint64_t k, uint32_t v) {
        ++seen;
        ASSERT_EQ(ref.at(k), v);
      });
      ASSERT_EQ(seen, ref.size());
      for (const auto& [k, v] : ref) ASSERT_EQ(index.Find(k), v);
    }
  }
  EXPECT_GT(ops_while_growing, 10000);
  for (const auto& [k, v] : ref) ASSERT_EQ(index.Find(k), v);
}

// What bounds the longest push: no Insert moves more than a few entries,
// however large the index it doubles.
TEST(KeyIndexTest, NoInsertMovesMoreThanAFewEntries) {
  KeyIndex index;
  uint64_t most = 0;
  int doublings = 0;
  size_t cap = index.capacity();
  for (uint64_t k = 0; k < 1000000; ++k) {
    const uint64_t before = index.entries_moved();
    index.Insert(k * 0x9e3779b97f4a7c15ULL, static_cast<uint32_t>(k));
    most = std::max(most, index.entries_moved() - before);
    if (index.capacity() != cap) ++doublings, cap = index.capacity();
  }
  EXPECT_GE(doublings, 16);
  EXPECT_LE(most, KeyIndex::kMovesPerInsert);
  // Every entry present at a doubling moved once: at least 3/4 of the old
  // slots each time, so the total is at least the final size / 2.
  EXPECT_GE(index.entries_moved(), index.size() / 2);
}

// A budget admits a doubling by GrowthBytes before the Insert that does it:
// what MemoryBytes gains must be exactly that, in either growth mode.
TEST(KeyIndexTest, GrowthBytesIsWhatTheNextInsertAddsToMemoryBytes) {
  for (auto growth : {KeyIndex::Growth::kIncremental, KeyIndex::Growth::kAtOnce}) {
    KeyIndex index(growth);
    int doublings = 0;
    for (uint64_t k = 1; k <= 100000; ++k) {
      const size_t before = index.MemoryBytes(), announced = index.GrowthBytes();
      index.Insert(k, 0);
      const size_t after = index.MemoryBytes();
      if (after > before) {
        ++doublings;
        ASSERT_EQ(after - before, announced) << "key " << k;
      } else {
        ASSERT_EQ(announced, 0u) << "key " << k;
      }
    }
    EXPECT_GE(doublings, 12);
  }
}

// Shedding while a doubling is under way keeps the unmoved entries too.
TEST(KeyIndexTest, KeepIfWhileGrowingKeepsEveryChosenEntry) {
  KeyIndex index;
  uint64_t k = 0;
  while (!index.growing() || index.capacity() < 4096) {
    ++k;
    index.Insert(k, static_cast<uint32_t>(k));
  }
  ASSERT_TRUE(index.growing());
  index.KeepIf([](uint64_t key, uint32_t*) { return key % 2 == 0; });
  EXPECT_FALSE(index.growing());
  EXPECT_EQ(index.size(), k / 2);
  for (uint64_t i = 1; i <= k; ++i) {
    ASSERT_EQ(index.Find(i), i % 2 == 0 ? static_cast<uint32_t>(i) : KeyIndex::kEmpty) << i;
  }
}

TEST(KeyIndexTest, KeyZeroIsAnOrdinaryKey) {
  KeyIndex index;
  EXPECT_EQ(index.Find(0), KeyIndex::kEmpty);
  index.Insert(0, 7);
  EXPECT_EQ(index.Find(0), 7u);
}

TEST(RowArenaTest, RowsNeverMoveAndAreDistinct) {
  RowArena arena(5);
  std::vector<float*> ptrs;
  for (uint32_t i = 0; i < 20000; ++i) {
    const uint32_t r = arena.Allocate();
    ASSERT_EQ(r, i);
    float* p = arena.Row(r);
    for (int j = 0; j < 5; ++j) p[j] = static_cast<float>(i);
    ptrs.push_back(p);
  }
  for (uint32_t i = 0; i < 20000; ++i) {
    ASSERT_EQ(arena.Row(i), ptrs[i]);
    ASSERT_EQ(ptrs[i][4], static_cast<float>(i));
  }
  arena.Free(17);
  EXPECT_EQ(arena.Allocate(), 17u);
}

}  // namespace
}  // namespace deepfm::ps
