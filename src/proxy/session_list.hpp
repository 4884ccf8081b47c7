#pragma once
// A worker's live client sessions, linked through the sessions themselves: no
// allocation per connection, and a walk over all of them for drain and for the
// deadline tick (see Worker::schedule_deadline_check). Thread-safety: none; one worker's
// thread only. Lifetime: a session links itself in its constructor and unlinks
// in its destructor, so the list never holds a dead one.

#include <cstddef>

namespace figshift::proxy {

template <typename T>
class SessionList {
 public:
  // Embedded in T as a public member named `list_hook`.
  struct Hook {
    T* prev = nullptr;
    T* next = nullptr;
  };

  void push_front(T& item) {
    item.list_hook.prev = nullptr;
    item.list_hook.next = head_;
    if (head_) head_->list_hook.prev = &item;
    head_ = &item;
    ++size_;
  }

  void erase(T& item) {
    auto& hook = item.list_hook;
    if (!hook.prev && head_ != &item) return;  // not linked: nothing to do
    if (hook.prev)
      hook.prev->list_hook.next = hook.next;
    else
      head_ = hook.next;
    if (hook.next) hook.next->list_hook.prev = hook.prev;
    hook = {};
    --size_;
  }

  // `f` may unlink the item it is given, not others.
  template <typename F>
  void for_each(F&& f) const {
    for (T* item = head_; item;) {
      T* next = item->list_hook.next;
      f(*item);
      item = next;
    }
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  T* head_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace figshift::proxy
