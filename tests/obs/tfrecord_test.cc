#include "obs/tfrecord.h"

#include <gtest/gtest.h>

namespace deepfm::obs {
namespace {

// Values from an independent bitwise CRC-32C (Castagnoli) and TensorFlow's
// mask, computed outside this code base.
TEST(TfRecordTest, TheMaskedCrcIsTensorFlows) {
  EXPECT_EQ(MaskedCrc32c("", 0), 0xa282ead8u);
  EXPECT_EQ(MaskedCrc32c("a", 1), 0x28e46e78u);
  EXPECT_EQ(MaskedCrc32c("brain.Event:2", 13), 0x7c0601eeu);
}

TEST(TfRecordTest, RecordsRoundTripAndAnyFlippedByteIsCaught) {
  std::string file;
  AppendRecord("hello", &file);
  AppendRecord(std::string(1000, 'x'), &file);
  AppendRecord("", &file);
  ASSERT_EQ(file.size(), 3 * 16 + 5 + 1000u);
  size_t at = 0;
  std::string data;
  ASSERT_TRUE(ReadRecord(file, &at, &data));
  EXPECT_EQ(data, "hello");
  ASSERT_TRUE(ReadRecord(file, &at, &data));
  EXPECT_EQ(data, std::string(1000, 'x'));
  ASSERT_TRUE(ReadRecord(file, &at, &data));
  EXPECT_EQ(data, "");
  EXPECT_FALSE(ReadRecord(file, &at, &data));  // the end
  // Every byte of the first record matters: length, its CRC, data, data CRC.
  for (size_t i = 0; i < 16 + 5; ++i) {
    std::string bad = file;
    bad[i] ^= 0x10;
    size_t from = 0;
    EXPECT_FALSE(ReadRecord(bad, &from, &data)) << "byte " << i;
    EXPECT_EQ(from, 0u);
  }
  // A torn record (the file cut short) is not read.
  size_t from = 0;
  EXPECT_FALSE(ReadRecord(file.substr(0, 15), &from, &data));
}

}  // namespace
}  // namespace deepfm::obs
