#pragma once
// An allocator over a std::pmr::memory_resource that, unlike
// std::pmr::polymorphic_allocator, can be assigned (Beast's basic_fields
// requires it) and so moves with the container that holds it. A copy of a
// container gets the heap, never the original's resource, so no copy can
// outlive an arena by accident. Default: the heap. Thread-safety: that of its
// resource, which must outlive every allocation made through it.

#include <cstddef>
#include <limits>
#include <memory_resource>
#include <new>
#include <type_traits>

namespace figshift::proxy {

template <typename T>
class ResourceAllocator {
 public:
  using value_type = T;
  using propagate_on_container_copy_assignment = std::false_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;

  ResourceAllocator() noexcept = default;
  explicit ResourceAllocator(std::pmr::memory_resource* resource) noexcept : resource_(resource) {}
  template <typename U>
  ResourceAllocator(const ResourceAllocator<U>& other) noexcept : resource_(other.resource()) {}

  T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(resource_->allocate(n * sizeof(T), alignof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    resource_->deallocate(p, n * sizeof(T), alignof(T));
  }

  std::pmr::memory_resource* resource() const noexcept { return resource_; }
  ResourceAllocator select_on_container_copy_construction() const noexcept { return {}; }

  template <typename U>
  bool operator==(const ResourceAllocator<U>& other) const noexcept {
    return resource_ == other.resource();
  }

 private:
  std::pmr::memory_resource* resource_ = std::pmr::new_delete_resource();
};

}  // namespace figshift::proxy
