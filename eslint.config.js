// Lint: the recommended rules of eslint and typescript-eslint, type-aware,
// plus the few project rules from CONVENTIONS.md (no bare catch, no stray any)
// and the stages' order (eslint/stage-imports.js: no import from a stage above).
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import stages from './eslint/stage-imports.js'

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'dist/**', 'coverage/**', 'viewer/dist/**', 'bench/results/**', '.tmp/**', '.gpu/**', 'tests/artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'bin/*.js', 'eslint/*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // The component contract makes start/stop/health async even where one
      // has nothing to await; that is the interface, not a mistake.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['**/*.ts', '**/*.js'],
    plugins: { citytwin: stages },
    rules: { 'citytwin/stage-imports': 'error' },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
)
