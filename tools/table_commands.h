// `varve table ...`: build, merge, get, scan, inspect and check immutable sorted tables
// (include/varve/table.h). Kept apart from varve_main.cc, which wires these into its CLI11 app.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>

namespace varve {

struct TableCommands;

// Adds the `table` subcommand and its children to app. The returned object holds the parsed
// arguments; pass it to RunTableCommands after parsing.
std::shared_ptr<TableCommands> AddTableCommands(CLI::App* app);
// True if a table subcommand was given.
bool TableCommandSelected(const TableCommands& t);
// Runs the selected table subcommand; returns the process exit status (0 ok, 1 no, 2 trouble).
int RunTableCommands(const TableCommands& t);

}  // namespace varve
