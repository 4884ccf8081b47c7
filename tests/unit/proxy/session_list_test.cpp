// SessionList: the worker's intrusive list of live sessions.
#include "proxy/session_list.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace figshift::proxy {
namespace {

struct Item {
  int id;
  SessionList<Item>::Hook list_hook;
};

std::vector<int> ids(const SessionList<Item>& list) {
  std::vector<int> out;
  list.for_each([&](Item& item) { out.push_back(item.id); });
  return out;
}

TEST(ProxySessionList, ErasesFromAnyPosition) {
  Item a{1, {}}, b{2, {}}, c{3, {}}, d{4, {}};
  SessionList<Item> list;
  for (auto* item : {&a, &b, &c, &d}) list.push_front(*item);
  EXPECT_EQ(ids(list), (std::vector<int>{4, 3, 2, 1}));
  list.erase(b);  // middle
  EXPECT_EQ(ids(list), (std::vector<int>{4, 3, 1}));
  list.erase(d);  // head
  EXPECT_EQ(ids(list), (std::vector<int>{3, 1}));
  list.erase(a);  // tail
  EXPECT_EQ(ids(list), (std::vector<int>{3}));
  EXPECT_EQ(list.size(), 1u);
  list.erase(c);
  EXPECT_TRUE(list.empty());
  EXPECT_TRUE(ids(list).empty());
  list.push_front(b);  // an erased item can be linked again
  EXPECT_EQ(ids(list), (std::vector<int>{2}));
  list.erase(a);  // never linked again since erased: changes nothing
  Item never{5, {}};
  list.erase(never);
  EXPECT_EQ(ids(list), (std::vector<int>{2}));
  EXPECT_EQ(list.size(), 1u);
}

TEST(ProxySessionList, TheVisitorMayUnlinkTheItemItIsGiven) {
  Item a{1, {}}, b{2, {}}, c{3, {}};
  SessionList<Item> list;
  for (auto* item : {&a, &b, &c}) list.push_front(*item);
  std::vector<int> seen;
  list.for_each([&](Item& item) {
    seen.push_back(item.id);
    list.erase(item);
  });
  EXPECT_EQ(seen, (std::vector<int>{3, 2, 1}));
  EXPECT_TRUE(list.empty());
}

}  // namespace
}  // namespace figshift::proxy
