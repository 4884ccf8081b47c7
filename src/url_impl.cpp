// The single translation unit that compiles Boost.URL: Debian 12's
// libboost1.81-dev ships its headers but no libboost_url to link
// (find_package(Boost COMPONENTS url) finds nothing), so it is built here,
// once, as src/asio_impl.cpp does for Asio and Beast.
#include <boost/url/src.hpp>
