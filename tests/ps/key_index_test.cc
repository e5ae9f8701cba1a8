#include "ps/key_index.h"

#include <gtest/gtest.h>

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
