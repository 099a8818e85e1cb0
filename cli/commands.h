/*
 * commands.h — the subcommands of `steward`.  Each takes the arguments
 * after its own name (argv[0] is the subcommand name) and returns an exit
 * code from common/exitcodes.h.
 */
#ifndef STEWARD_CLI_COMMANDS_H
#define STEWARD_CLI_COMMANDS_H

int cmd_log(int argc, char **argv);      /* cli/cmd_log.c */

/* Add one line per subcommand, and its entry in main.c's table. */

#endif
